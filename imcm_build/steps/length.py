"""LengthFilter: keep documents with at least `min_words` words (`doc.n_words`, set by Tokenize)."""

from __future__ import annotations

import numpy as np

from imcm_build.document import Document
from imcm_build.report import StepReport

LENGTH_PERCENTILES = (0, 10, 25, 50, 75, 90, 100)


def length_summary(lengths: list[int]) -> dict[str, float]:
    """Mean and percentiles (p0 = min ... p100 = max) of word counts; empty dict for no documents."""
    if not lengths:
        return {}
    values = np.asarray(lengths)
    summary = {
        f"p{q}": float(v)
        for q, v in zip(LENGTH_PERCENTILES, np.percentile(values, LENGTH_PERCENTILES), strict=True)
    }
    summary["mean"] = round(float(values.mean()), 2)
    return summary


class LengthFilter:
    """Build step: drop documents shorter than `min_words` words (reason "too_short")."""

    name = "length"

    def __init__(self, min_words: int = 50) -> None:
        if min_words < 0:
            raise ValueError(f"LengthFilter: min_words must be >= 0, got {min_words}")
        self.min_words = min_words

    def run(self, docs: list[Document], report: StepReport) -> list[Document]:
        kept = []
        for doc in docs:
            if doc.n_words >= self.min_words:
                kept.append(doc)
            else:
                report.drop("too_short", doc.id)
        report.notes.update(
            {
                "min_words": self.min_words,
                "words_before": length_summary([doc.n_words for doc in docs]),
                "words_after": length_summary([doc.n_words for doc in kept]),
            }
        )
        return kept
