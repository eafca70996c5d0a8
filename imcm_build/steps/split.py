"""Split: train / validation / test by iterative stratification (Sechidis et al., 2011).

`MultilabelStratifiedShuffleSplit` from the `iterative-stratification` package runs twice with a fixed
`random_state`: first train vs the rest (validation + test), then the rest into validation and test with
their relative sizes. Documents are sorted by id (numeric-aware) first and the label columns by name,
so the split depends only on the set of documents, never on their order.

Iterative stratification balances labels first and split sizes only as a tie-break, so its sizes can
miss the ratios badly (when every label is rare it puts everything in train). The sizes are therefore
corrected afterwards to exactly round(n × ratio) for validation and test (train takes the rest),
moving the documents whose move best reduces the label imbalance (see `correct_sizes`).

The report notes give the split sizes and how well each label's prevalence (share of a split's documents
carrying it) matches its prevalence in the whole set: the per-label maximum absolute deviation over the
three splits, its mean and maximum over labels, and the labels missing from each split. A label absent
from train (it occurs only in validation or test) cannot be learned and is listed under "warnings".
Fewer than `Split.min_documents()` documents (10 for 0.8/0.1/0.1), or sizes that leave a split empty
(10 documents at 0.1/0.45/0.45 give train 0), is a BuildError before anything is split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from imcm_build.document import Document
from imcm_build.report import BuildError, StepReport

SPLITS = ("train", "validation", "test")
WORST_LABELS_REPORTED = 10


def id_sort_key(doc_id: str) -> tuple[int, int | float, str]:
    """Numeric ids in numeric order ("9" < "10"), then any non-numeric ids in string order."""
    if doc_id.isdecimal():
        return (0, int(doc_id), doc_id)
    return (1, math.inf, doc_id)


class Split:
    """Build step: set `doc.split`; return documents ordered by (split, id)."""

    name = "split"

    def __init__(self, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 42) -> None:
        if len(ratios) != 3 or any(ratio <= 0 for ratio in ratios) or abs(sum(ratios) - 1) > 1e-6:
            raise ValueError(
                f"Split: ratios must be three positive numbers summing to 1, got {tuple(ratios)}"
            )
        self.ratios = tuple(float(ratio) for ratio in ratios)
        self.seed = seed

    def warm_up(self) -> None:
        """Import iterative-stratification and scikit-learn while the workers work."""
        import iterstrat.ml_stratifiers  # noqa: F401

    def run(self, docs: list[Document], report: StepReport) -> list[Document]:
        ordered = sorted(docs, key=lambda doc: id_sort_key(doc.id))
        label_names = sorted({label for doc in ordered for label in doc.labels})
        matrix = label_matrix(ordered, label_names)
        assignment = self._assign(matrix)
        for doc, split_index in zip(ordered, assignment, strict=True):
            doc.split = SPLITS[split_index]
        report.notes.update(split_quality(matrix, assignment, label_names))
        report.notes["ratios"] = list(self.ratios)
        report.notes["seed"] = self.seed
        return sorted(ordered, key=lambda doc: (SPLITS.index(doc.split), id_sort_key(doc.id)))

    def _assign(self, matrix: np.ndarray) -> np.ndarray:
        """Index into SPLITS for every row of `matrix`."""
        n_docs = len(matrix)
        if n_docs < self.min_documents():
            raise BuildError(self._too_few(n_docs))
        targets = target_sizes(n_docs, self.ratios)
        if targets.min() < 1:
            sizes = ", ".join(f"{split} {size}" for split, size in zip(SPLITS, targets, strict=True))
            raise BuildError(
                f"split: {n_docs} documents with ratios {self.ratios} give {sizes}: every split needs at "
                f"least one document (use more documents or other ratios)"
            )
        _, validation_ratio, test_ratio = self.ratios
        rest_ratio = validation_ratio + test_ratio
        train_rows, rest_rows = _stratified_split(matrix, rest_ratio, self.seed)
        validation_part, test_part = _stratified_split(matrix[rest_rows], test_ratio / rest_ratio, self.seed)
        assignment = np.zeros(n_docs, dtype=int)
        assignment[rest_rows[validation_part]] = SPLITS.index("validation")
        assignment[rest_rows[test_part]] = SPLITS.index("test")
        return correct_sizes(matrix, assignment, targets)

    def min_documents(self) -> int:
        """Fewest documents for which the smallest split's expected size is one document."""
        return max(len(SPLITS), math.ceil(1 / min(self.ratios) - 1e-9))

    def _too_few(self, n_docs: int) -> str:
        return (
            f"split: {n_docs} document(s) cannot fill train/validation/test with ratios {self.ratios}: "
            f"every split needs at least one document (at least {self.min_documents()} documents are needed)"
        )


def _stratified_split(matrix: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (sorted) of the two parts; fewer than two rows all go to the first part."""
    if len(matrix) < 2:
        return np.arange(len(matrix)), np.arange(0)
    if matrix.shape[1] < 2:  # iterstrat needs a multilabel (2+ column) target; an empty column is neutral
        matrix = np.hstack([matrix, np.zeros((len(matrix), 2 - matrix.shape[1]), dtype=matrix.dtype)])
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit  # scikit-learn: ~0.5 s, see warm_up

    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    first, second = next(splitter.split(np.zeros((len(matrix), 1)), matrix))
    return np.sort(first), np.sort(second)


def target_sizes(n_docs: int, ratios: Sequence[float]) -> np.ndarray:
    """Documents per split: validation and test get round(n × ratio) (half up), train the rest."""
    sizes = np.array([math.floor(n_docs * ratio + 0.5) for ratio in ratios])
    sizes[0] = n_docs - sizes[1:].sum()
    return sizes


def correct_sizes(matrix: np.ndarray, assignment: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Move documents from splits above their target size to splits below it.

    A label's excess in a split is its count there minus the split's share of the label's total.
    Moving a document from `source` to `destination` changes the sum of squared excesses by
    -2 × sum over its labels of (excess[source] − excess[destination] − 1); the documents moved are those
    that reduce it most (documents without labels change nothing), ties going to the earlier row
    (rows are in id order), so the result is deterministic.
    """
    assignment = assignment.copy()
    totals = matrix.sum(axis=0)
    shares = targets / targets.sum()
    while True:
        sizes = np.bincount(assignment, minlength=len(targets))
        gap = sizes - targets
        source, destination = int(np.argmax(gap)), int(np.argmin(gap))
        n_moves = min(gap[source], -gap[destination])
        if n_moves <= 0:
            return assignment
        excess = np.stack(
            [matrix[assignment == split].sum(axis=0) - share * totals for split, share in enumerate(shares)]
        )
        rows = np.flatnonzero(assignment == source)
        scores = matrix[rows] @ (excess[source] - excess[destination] - 1)
        assignment[rows[np.argsort(-scores, kind="stable")[:n_moves]]] = destination


def label_matrix(docs: Sequence[Document], label_names: Sequence[str]) -> np.ndarray:
    """Binary document × label matrix, columns in `label_names` order."""
    column = {name: index for index, name in enumerate(label_names)}
    matrix = np.zeros((len(docs), len(label_names)), dtype=np.int8)
    for row, doc in enumerate(docs):
        for label in doc.labels:
            matrix[row, column[label]] = 1
    return matrix


def split_quality(matrix: np.ndarray, assignment: np.ndarray, label_names: Sequence[str]) -> dict:
    """Sizes, per-label prevalence deviation per split, labels missing from splits, warnings."""
    overall = matrix.mean(axis=0)
    sizes: dict[str, int] = {}
    missing: dict[str, list[str]] = {}
    deviations = np.zeros((len(SPLITS), len(label_names)))
    for index, split in enumerate(SPLITS):
        rows = matrix[assignment == index]
        sizes[split] = len(rows)
        deviations[index] = np.abs(rows.mean(axis=0) - overall)
        missing[split] = [label_names[column] for column in np.flatnonzero(rows.sum(axis=0) == 0)]
    worst_per_label = deviations.max(axis=0)
    worst_order = np.argsort(-worst_per_label, kind="stable")[:WORST_LABELS_REPORTED]
    warnings = [f"label {name!r} occurs only in validation/test, never in train" for name in missing["train"]]
    return {
        "sizes": sizes,
        "fractions": {split: round(size / len(assignment), 4) for split, size in sizes.items()},
        "label_prevalence_deviation": {
            "mean_over_labels": round(float(worst_per_label.mean()), 6) if label_names else 0.0,
            "max_over_labels": round(float(worst_per_label.max()), 6) if label_names else 0.0,
            "worst_labels": {label_names[i]: round(float(worst_per_label[i]), 6) for i in worst_order},
        },
        "labels_missing_from_split": missing,
        "warnings": warnings,
    }
