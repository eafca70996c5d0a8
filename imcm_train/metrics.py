"""Multi-label evaluation: micro/macro/example F1, hamming loss, P@k, frequency bands, threshold tuning.

Conventions shared by every function here:

* ``y_true`` is a 0/1 indicator matrix ``[N, L]`` (build it with :func:`to_indicator`).
* ``scores`` is a float matrix ``[N, L]``: sigmoid probabilities for threshold models, or 0/1 label
  sets for seq2seq models (SGM), which ``evaluate`` thresholds at 0.5 like any other score.
* A label is predicted when ``score >= threshold``. A document may end up with no predicted label;
  nothing forces a top-1 prediction.
* Averages that divide by zero count as 0 (``zero_division=0``): a label that is neither gold nor
  predicted anywhere in the evaluated set has F1 0 and still counts in the macro average over all L labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import numpy as np
from sklearn.metrics import f1_score, hamming_loss, precision_recall_fscore_support

BANDS = ("head", "torso", "tail")
TOP_K = (1, 3, 5)
THRESHOLD_GRID = np.arange(1, 100) / 100  # 0.01 ... 0.99
DEFAULT_THRESHOLD = 0.5


class UnknownLabelError(ValueError):
    """A gold label id outside [0, num_labels): never mapped to another label, always an error."""


def to_indicator(label_lists: Sequence[Sequence[int]], num_labels: int, where: str = "") -> np.ndarray:
    """Label-id lists → uint8 indicator matrix [N, num_labels].

    Every id must be an integer (not a bool) in [0, num_labels); otherwise UnknownLabelError names
    ``where`` (e.g. a file and split) and the index of the offending document.
    """
    if isinstance(num_labels, bool) or not isinstance(num_labels, Integral) or num_labels <= 0:
        raise ValueError(f"{where or 'to_indicator'}: num_labels must be a positive int, got {num_labels!r}")
    indicator = np.zeros((len(label_lists), num_labels), dtype=np.uint8)
    for doc_index, labels in enumerate(label_lists):
        for label in labels:
            _check_label_id(label, num_labels, where, doc_index)
        indicator[doc_index, list(labels)] = 1
    return indicator


def _check_label_id(label: object, num_labels: int, where: str, doc_index: int) -> None:
    place = f"{where}: document {doc_index}" if where else f"document {doc_index}"
    if isinstance(label, bool) or not isinstance(label, Integral):
        raise UnknownLabelError(f"{place}: label {label!r} is not an integer label id")
    if not 0 <= label < num_labels:
        raise UnknownLabelError(f"{place}: unknown label id {label} (valid ids are 0..{num_labels - 1})")


def frequency_bands(label_frequency: np.ndarray) -> np.ndarray:
    """Band of each label: 0 = head, 1 = torso, 2 = tail.

    Labels are ranked by descending training frequency (ties: lower label id first) and cut into
    thirds with ``np.array_split``: when L is not divisible by 3 the earlier bands take the extra
    labels, so 10 labels split 4/3/3 and 11 labels split 4/4/3. With fewer than 3 labels the later
    bands are empty.
    """
    frequency = np.asarray(label_frequency)
    if frequency.ndim != 1 or frequency.size == 0:
        raise ValueError(f"label_frequency must be a non-empty 1-D array, got shape {frequency.shape}")
    ranking = np.argsort(-frequency, kind="stable")
    bands = np.empty(frequency.size, dtype=np.int64)
    for band, members in enumerate(np.array_split(ranking, len(BANDS))):
        bands[members] = band
    return bands


def evaluate(
    y_true: np.ndarray,
    scores: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    label_frequency: np.ndarray | None = None,
) -> dict:
    """Every metric of Table 2 and more, as plain Python floats/lists (JSON-able).

    ``band_f1`` is micro-F1 over each band's labels (the pooled counts of that band);
    ``band_macro_f1`` is the mean per-label F1 within the band. A band with no labels gets None.
    Without ``label_frequency`` the bands follow label ids, which a release orders by descending
    training frequency (id 0 = most frequent).
    """
    y_true, scores = _check_matrices(y_true, scores)
    y_pred = (scores >= threshold).astype(np.uint8)
    precision, recall, micro_f1, _ = precision_recall_fscore_support(
        y_true, y_pred, average="micro", zero_division=0
    )
    per_label_f1 = f1_score(y_true, y_pred, average=None, zero_division=0)
    result = {
        "micro_precision": float(precision),
        "micro_recall": float(recall),
        "micro_f1": float(micro_f1),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "example_f1": float(f1_score(y_true, y_pred, average="samples", zero_division=0)),
        "hamming_loss": float(hamming_loss(y_true, y_pred)),
    }
    result.update({f"p@{k}": precision_at_k(y_true, scores, k) for k in TOP_K})
    result["per_label_f1"] = [float(f1) for f1 in per_label_f1]
    bands = _bands_for(label_frequency, y_true.shape[1])
    result["band_f1"] = _band_micro_f1(y_true, y_pred, bands)
    result["band_macro_f1"] = _band_macro_f1(per_label_f1, bands)
    result["threshold"] = float(threshold)
    return result


def precision_at_k(y_true: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Mean over documents of (gold labels among the k top-scored labels) / k.

    Ties in score are broken by label id, lower first. For seq2seq 0/1 scores this means the
    predicted labels in id order, then unpredicted labels in id order fill the remaining slots.
    The divisor is always k, even for documents with fewer than k gold labels (the usual XML
    definition), so P@5 of a perfect model is card/5 on a set with a mean of card < 5 labels.
    """
    top_k = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hits = np.take_along_axis(y_true, top_k, axis=1).sum(axis=1)
    return float(np.mean(hits / k))


def tune_threshold(y_true: np.ndarray, scores: np.ndarray) -> float:
    """The global threshold from THRESHOLD_GRID that maximises micro-F1 (tune it on validation).

    Among equally good thresholds the one closest to 0.5 wins, then the lower one.
    """
    y_true, scores = _check_matrices(y_true, scores)
    micro_f1 = _micro_f1_per_threshold(y_true, scores, THRESHOLD_GRID)
    best = np.flatnonzero(np.isclose(micro_f1, micro_f1.max(), rtol=0, atol=1e-12))
    closest = best[np.argmin(np.abs(THRESHOLD_GRID[best] - DEFAULT_THRESHOLD))]
    return float(THRESHOLD_GRID[closest])


def _micro_f1_per_threshold(y_true: np.ndarray, scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """micro-F1 = 2 TP / (predicted + gold), for all thresholds at once via sorted scores."""
    all_scores = np.sort(scores, axis=None)
    gold_scores = np.sort(scores[y_true.astype(bool)])
    predicted = all_scores.size - np.searchsorted(all_scores, thresholds, side="left")
    true_positive = gold_scores.size - np.searchsorted(gold_scores, thresholds, side="left")
    denominator = predicted + gold_scores.size
    return np.divide(
        2.0 * true_positive, denominator, out=np.zeros(len(thresholds)), where=denominator > 0
    )


def _check_matrices(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=np.float64)
    if y_true.ndim != 2 or scores.shape != y_true.shape:
        raise ValueError(f"y_true {y_true.shape} and scores {scores.shape} must be 2-D of the same shape")
    if y_true.shape[1] < 2:
        # scikit-learn reads an [N, 1] matrix as one binary target and would average over both classes
        raise ValueError(f"multi-label metrics need at least 2 labels, got shape {y_true.shape}")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("y_true must be a 0/1 indicator matrix (use to_indicator)")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values")
    return y_true.astype(np.uint8), scores


def _bands_for(label_frequency: np.ndarray | None, num_labels: int) -> np.ndarray:
    if label_frequency is None:
        return frequency_bands(np.arange(num_labels, 0, -1))
    if len(label_frequency) != num_labels:
        raise ValueError(f"label_frequency has {len(label_frequency)} entries for {num_labels} labels")
    return frequency_bands(label_frequency)


def _band_micro_f1(y_true: np.ndarray, y_pred: np.ndarray, bands: np.ndarray) -> dict:
    result = {}
    for band, name in enumerate(BANDS):
        labels = np.flatnonzero(bands == band)
        result[name] = (
            float(f1_score(y_true, y_pred, labels=labels, average="micro", zero_division=0))
            if labels.size
            else None
        )
    return result


def _band_macro_f1(per_label_f1: np.ndarray, bands: np.ndarray) -> dict:
    return {
        name: float(per_label_f1[bands == band].mean()) if (bands == band).any() else None
        for band, name in enumerate(BANDS)
    }
