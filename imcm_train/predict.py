"""Labels for new text from a finished run folder (see `imcm_train.train`).

Text is tokenized the way the run's release made its tokens (the run's `tokenizer.json`, see
`imcm_train.tokenization`: the build's cleaning + jieba, with zhconv for a `--to-simplified` release, or
the source tokenization of an imported AAPD / RCV1-v2 release), then encoded with the run's vocabulary
and truncated to the run's `max_length`, exactly as in training. The threshold is the run's fixed
one (its `config.threshold`, by default), the one tuned on validation (`"tuned"`), or any number.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imcm_build.release import LABELS_FILE
from imcm_train.data import EncodedSplit, Vocabulary
from imcm_train.tokenization import load_tokenizer
from imcm_train.train import BASELINE_NAMES, TrainConfig, predict_scores


class PredictError(ValueError):
    """A run folder that cannot predict, or input it cannot predict for; the message says which."""


@dataclass
class Prediction:
    text: str
    labels: list[tuple[str, float]]  # every label scoring >= threshold, best first
    top: list[tuple[str, float]]  # the `top_k` best labels whatever their score
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        def as_dicts(pairs: list[tuple[str, float]]) -> list[dict[str, Any]]:
            return [{"label": label, "score": round(score, 4)} for label, score in pairs]

        return {"text": self.text, "labels": as_dicts(self.labels), "top": as_dicts(self.top),
                "threshold": self.threshold}


class Predictor:
    """A trained model (neural or baseline) with its vocabulary, label names and thresholds."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        config_file = self.run_dir / "config.json"
        if not config_file.is_file():
            raise PredictError(f"{config_file}: missing: {self.run_dir} is not a run folder")
        self.config = TrainConfig.from_dict(json.loads(config_file.read_text(encoding="utf-8")), str(config_file))
        self.label_names = _read_labels(self.run_dir / LABELS_FILE)
        try:
            self.tokenizer = load_tokenizer(self.run_dir)
        except ValueError as error:
            raise PredictError(f"{self.run_dir}: {error}") from None
        self.tuned_threshold = self._read_tuned_threshold()
        if self.config.model in BASELINE_NAMES:
            self._load_baseline()
        else:
            self._load_neural()

    def _read_tuned_threshold(self) -> float | None:
        path = self.run_dir / "test_metrics.json"
        return json.loads(path.read_text(encoding="utf-8"))["tuned_threshold"] if path.is_file() else None

    def _load_baseline(self) -> None:
        path = _require(self.run_dir / "model.pkl")
        with open(path, "rb") as handle:
            self.estimator = pickle.load(handle)  # noqa: S301 - the run folder is the user's own output
        self.uses_threshold = True

    def _load_neural(self) -> None:
        from imcm_train.models import build_model

        self.vocabulary = Vocabulary.load(_require(self.run_dir / "vocab.json"))
        checkpoint = torch.load(_require(self.run_dir / "best.pt"), map_location="cpu", weights_only=False)
        self.model = build_model(self.config.model, len(self.vocabulary), len(self.label_names), **self.config.hparams)
        self.model.load_state_dict(checkpoint["model"])
        self.model.eval()
        self.uses_threshold = bool(getattr(self.model, "uses_threshold", True))
        if self.tuned_threshold is None:
            self.tuned_threshold = checkpoint["best"].get("tuned_threshold")

    def resolve_threshold(self, choice: str | float | None) -> float:
        """None → the run's threshold; `"tuned"` → the validation-tuned one; a number (or numeric string) → itself."""
        if choice is None:
            return float(self.config.threshold)
        if choice == "tuned":
            if self.tuned_threshold is None:
                raise PredictError(f"{self.run_dir}: the run has no tuned threshold (test_metrics.json missing)")
            return float(self.tuned_threshold)
        try:
            value = float(choice)
        except ValueError:
            raise PredictError(f"threshold must be 'tuned' or a number in (0, 1), got {choice!r}") from None
        if not 0 < value < 1:
            raise PredictError(f"threshold must be in (0, 1), got {value}")
        return value

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Scores [N, L]: probabilities, or 0/1 label sets for the seq2seq models."""
        token_lists = [self.tokenizer(text) for text in texts]
        empty = [number for number, tokens in enumerate(token_lists, start=1) if not tokens]
        if empty:
            raise PredictError(f"text(s) number {empty} have no tokens to classify")
        if self.config.model in BASELINE_NAMES:
            return np.asarray(self.estimator.predict_scores([" ".join(tokens) for tokens in token_lists]), dtype=float)
        token_ids = [self.vocabulary.encode(tokens, self.config.max_length) for tokens in token_lists]
        dataset = EncodedSplit(token_ids, [[] for _ in token_ids], len(self.label_names))
        return predict_scores(self.model, dataset, self.config.eval_batch_size, torch.device("cpu"))

    def predict(self, texts: Sequence[str], threshold: str | float | None = None, top_k: int = 5) -> list[Prediction]:
        cutoff = self.resolve_threshold(threshold)
        predictions = []
        for text, row in zip(texts, self.scores(texts), strict=True):
            ranked = [(self.label_names[i], float(row[i])) for i in np.argsort(-row, kind="stable")]
            chosen = [(label, score) for label, score in ranked if score >= cutoff]
            predictions.append(Prediction(text, chosen, ranked[:top_k], cutoff))
        return predictions


def _require(path: Path) -> Path:
    if not path.is_file():
        raise PredictError(f"{path}: missing: the run did not finish or is not a run folder")
    return path


def _read_labels(path: Path) -> list[str]:
    names = _require(path).read_text(encoding="utf-8").splitlines()
    if not names:
        raise PredictError(f"{path}: no label names")
    return names


def read_texts(path: str | Path) -> list[str]:
    """One text per non-blank line of a UTF-8 file."""
    path = Path(path)
    if not path.is_file():
        raise PredictError(f"{path}: no such file")
    texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not texts:
        raise PredictError(f"{path}: no text to classify (the file is empty)")
    return texts


def format_table(predictions: Sequence[Prediction], width: int = 24) -> str:
    lines = []
    for prediction in predictions:
        text = prediction.text.replace("\n", " ")
        text = text if len(text) <= width else text[: width - 1] + "…"
        chosen = ", ".join(f"{label} {score:.2f}" for label, score in prediction.labels) or "(none above threshold)"
        lines.append(f"{text}\t{chosen}")
    return "\n".join(lines)


def format_json_lines(predictions: Sequence[Prediction]) -> str:
    return "\n".join(json.dumps(prediction.to_dict(), ensure_ascii=False) for prediction in predictions)
