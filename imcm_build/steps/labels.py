"""Labels: user tags → the label set and each document's labels.

Each tag is normalised (NFKC, so full- and half-width forms agree; casefolded, so "Python" and "python"
agree; stripped, inner whitespace collapsed to one space) and repeated tags in one document count once,
at their first position. A tag's frequency is the number of documents carrying it. The label set is the
`num_labels` most frequent tags with frequency >= `min_label_freq`, ordered by descending frequency,
ties broken by tag name in code-point order; the position in this list is the label id. A document keeps
its tags that are labels, in label-id order, and is dropped (reason "no_label") when none is left.
"""

from __future__ import annotations

import unicodedata
from collections import Counter

from imcm_build.document import Document
from imcm_build.report import StepReport


def normalize_tag(tag: str) -> str:
    """NFKC, casefold, collapse whitespace; "" for a tag with no visible content."""
    return " ".join(unicodedata.normalize("NFKC", tag).casefold().split())


def document_tags(tags: list[str]) -> list[str]:
    """Normalised tags of one document, empty ones removed, first occurrence kept."""
    return list(dict.fromkeys(tag for tag in map(normalize_tag, tags) if tag))


def rank_labels(frequency: Counter[str], num_labels: int, min_label_freq: int) -> list[str]:
    """Most frequent tags first, ties by name; at most `num_labels`, each with frequency >= `min_label_freq`."""
    ranked = sorted(frequency.items(), key=lambda item: (-item[1], item[0]))
    return [tag for tag, count in ranked if count >= min_label_freq][:num_labels]


class Labels:
    """Build step: choose the label set, set `doc.labels`, drop documents without labels."""

    name = "labels"

    def __init__(self, num_labels: int = 158, min_label_freq: int = 1) -> None:
        if num_labels < 1 or min_label_freq < 1:
            raise ValueError(
                f"Labels: num_labels and min_label_freq must be >= 1, got {num_labels}, {min_label_freq}"
            )
        self.num_labels = num_labels
        self.min_label_freq = min_label_freq
        self.label_names_: list[str] = []

    def run(self, docs: list[Document], report: StepReport) -> list[Document]:
        normalized = [document_tags(doc.tags) for doc in docs]
        frequency = Counter(tag for tags in normalized for tag in tags)
        self.label_names_ = rank_labels(frequency, self.num_labels, self.min_label_freq)
        label_id = {name: index for index, name in enumerate(self.label_names_)}
        kept = []
        for doc, tags in zip(docs, normalized, strict=True):
            doc.labels = sorted((tag for tag in tags if tag in label_id), key=label_id.__getitem__)
            if doc.labels:
                kept.append(doc)
            else:
                report.drop("no_label", doc.id)
        report.notes.update(self._notes(docs, normalized, frequency, kept))
        return kept

    def _notes(
        self, docs: list[Document], normalized: list[list[str]], frequency: Counter[str], kept: list[Document]
    ) -> dict:
        assignments = sum(len(tags) for tags in normalized)
        kept_assignments = sum(len(doc.labels) for doc in docs)
        notes = {
            "label_names": list(self.label_names_),
            "label_frequencies": [frequency[name] for name in self.label_names_],
            "num_labels_requested": self.num_labels,
            "min_label_freq": self.min_label_freq,
            "tags_seen": len(frequency),
            "tags_kept": len(self.label_names_),
            "raw_tag_assignments": sum(len(doc.tags) for doc in docs),
            "tag_assignments": assignments,
            "label_assignments": kept_assignments,
            "fraction_of_assignments_kept": round(kept_assignments / assignments, 6) if assignments else 0.0,
            "label_assignments_on_kept_documents": sum(len(doc.labels) for doc in kept),
        }
        if len(self.label_names_) < self.num_labels:
            notes["fewer_labels_than_requested"] = (
                f"only {len(self.label_names_)} tags have frequency >= {self.min_label_freq}; all are labels"
            )
        elif self.label_names_:
            cutoff = frequency[self.label_names_[-1]]
            notes["cutoff_frequency"] = cutoff
            notes["tags_cut_by_name_tie_break"] = sorted(
                tag
                for tag, count in frequency.items()
                if count == cutoff and tag not in set(self.label_names_)
            )
        return notes


class LabelOutlook:
    """Which tags can still become labels before every document's length is known.

    The label set is chosen among documents of `min_words`+ words, so it is only known after tokenizing;
    a document none of whose tags can be a label will be dropped whatever its length, and need not be
    tokenized. With f(t) the frequency of tag t among all documents (an upper bound of its frequency
    after the length filter) and LB(t) its frequency among documents already known to be long enough (a
    lower bound), let c be the `num_labels`-th largest LB. A tag with f(t) < max(c, min_label_freq) can
    never be chosen: at least `num_labels` tags will have a frequency >= c > f(t). So: tokenize first the
    documents carrying a `likely` tag (the `num_labels` most frequent by f), then `possible` gives the
    tags still possible, and only documents carrying one of those need tokenizing. The label set and the
    release are exactly those of tokenizing everything (tested); skipped documents are dropped with the
    reason "no_possible_label" instead of "too_short" or "no_label".
    """

    def __init__(self, num_labels: int, min_label_freq: int, min_words: int) -> None:
        self.num_labels, self.min_label_freq, self.min_words = num_labels, min_label_freq, min_words

    def likely(self, tag_lists: list[list[str]]) -> list[bool]:
        """Whether each document carries one of the `num_labels` most frequent tags."""
        frequency = Counter(tag for tags in tag_lists for tag in tags)
        top = set(rank_labels(frequency, self.num_labels, self.min_label_freq))
        return [not top.isdisjoint(tags) for tags in tag_lists]

    def possible(self, tag_lists: list[list[str]], n_words: list[int | None]) -> set[str]:
        """Tags that can still become labels, given the word counts known so far (None = not known)."""
        frequency = Counter(tag for tags in tag_lists for tag in tags)
        known_long = Counter(
            tag for tags, words in zip(tag_lists, n_words, strict=True)
            if words is not None and words >= self.min_words for tag in tags
        )
        bounds = sorted(known_long.values(), reverse=True)
        cutoff = bounds[self.num_labels - 1] if len(bounds) >= self.num_labels else 0
        return {tag for tag, count in frequency.items() if count >= max(cutoff, self.min_label_freq)}
