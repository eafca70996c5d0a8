"""The neural models of the paper, built by name: `build_model("altxml", vocab_size, num_labels)`."""

from __future__ import annotations

import inspect
from typing import Any

from imcm_train.models.altxml import AltXML
from imcm_train.models.cnn import KimCNN
from imcm_train.models.cnn_rnn import CNNRNN
from imcm_train.models.layers import LabelSequenceModel, MultiLabelModel
from imcm_train.models.rnn_att import RNNAttention
from imcm_train.models.sgm import SGM

MODEL_NAMES = ("altxml", "rnn_att", "cnn", "cnn_rnn", "sgm", "sgm_ge")

_CLASSES: dict[str, type[MultiLabelModel]] = {
    "altxml": AltXML,
    "rnn_att": RNNAttention,
    "cnn": KimCNN,
    "cnn_rnn": CNNRNN,
    "sgm": SGM,
    "sgm_ge": SGM,
}
_FIXED_HPARAMS: dict[str, dict[str, Any]] = {
    "sgm": {"global_embedding": False},
    "sgm_ge": {"global_embedding": True},
}

__all__ = [
    "MODEL_NAMES",
    "AltXML",
    "CNNRNN",
    "KimCNN",
    "LabelSequenceModel",
    "MultiLabelModel",
    "RNNAttention",
    "SGM",
    "build_model",
    "default_hparams",
]


def default_hparams(name: str) -> dict[str, Any]:
    """The hyper-parameters `name` accepts, with their (paper) defaults."""
    model_class = _model_class(name)
    parameters = inspect.signature(model_class.__init__).parameters.values()
    defaults = {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}
    for fixed in _FIXED_HPARAMS.get(name, {}):
        defaults.pop(fixed)
    return defaults


def build_model(name: str, vocab_size: int, num_labels: int, **hparams: Any) -> MultiLabelModel:
    """Build model `name` (one of MODEL_NAMES); hparams override the defaults of `default_hparams(name)`."""
    unknown = sorted(set(hparams) - set(default_hparams(name)))
    if unknown:
        raise ValueError(
            f"model {name!r} has no hyper-parameter(s) {', '.join(unknown)}; "
            f"it accepts: {', '.join(default_hparams(name))}"
        )
    return _model_class(name)(vocab_size, num_labels, **hparams, **_FIXED_HPARAMS.get(name, {}))


def _model_class(name: str) -> type[MultiLabelModel]:
    if name not in _CLASSES:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return _CLASSES[name]
