"""Tokenize: jieba accurate mode (`imcm_build.text.tokenize`) on every `doc.text`, across the cores.

The texts go to the build's worker pool (`imcm_build.pipeline.parallel_map`); each comes back as one
space-joined string, which pickles far faster than a list of hundreds of short tokens (tokens never
contain whitespace, so splitting on " " restores them exactly). jieba's dictionary is loaded once, in
`load`, before the workers fork, so they share it. While the workers tokenize, this process runs the
build's pending warm-ups (`imcm_build.pipeline.run_warm_ups`). The output does not depend on the number of
workers.

With a `LabelOutlook` (the build's default), documents none of whose tags can become a label are not
tokenized but dropped ("no_possible_label"): they would be dropped later anyway (see
`imcm_build.steps.labels.LabelOutlook`); on the shared records that is 15% of the documents.
"""

from __future__ import annotations

from imcm_build.document import Document
from imcm_build.pipeline import parallel_map, run_warm_ups
from imcm_build.report import StepReport
from imcm_build.steps.labels import LabelOutlook, document_tags
from imcm_build.text import count_words, load_tokenizer, tokenize


def tokenize_joined(text: str) -> tuple[str, int]:
    """The tokens of `text` joined by single spaces, and how many are words (a worker's unit of work)."""
    tokens = tokenize(text)
    return " ".join(tokens), count_words(tokens)


class Tokenize:
    """Build step: fill `doc.tokens` and `doc.n_words`; with an `outlook`, drop (untokenized) the documents
    that cannot get a label."""

    name = "tokenize"

    def __init__(self, outlook: LabelOutlook | None = None) -> None:
        self.outlook = outlook

    def load(self) -> None:
        """jieba's dictionary (~0.6 s), loaded before the workers fork so that they share it."""
        load_tokenizer()

    def run(self, docs: list[Document], report: StepReport) -> list[Document]:
        if self.outlook is None:
            self._tokenize(docs)
            kept = docs
        else:
            kept = self._tokenize_those_that_can_get_a_label(docs, self.outlook, report)
        report.notes.update(
            {
                "tokens": sum(len(doc.tokens) for doc in kept),
                "words": sum(doc.n_words for doc in kept),
            }
        )
        return kept

    @staticmethod
    def _tokenize(docs: list[Document]) -> None:
        # the longest wait of the build: this process imports what later steps need meanwhile
        tokenized = parallel_map(tokenize_joined, [doc.text for doc in docs], desc="tokenize", meanwhile=run_warm_ups)
        for doc, (tokens, n_words) in zip(docs, tokenized, strict=True):
            doc.tokens = tokens.split(" ") if tokens else []
            doc.n_words = n_words

    def _tokenize_those_that_can_get_a_label(
        self, docs: list[Document], outlook: LabelOutlook, report: StepReport
    ) -> list[Document]:
        tag_lists = [document_tags(doc.tags) for doc in docs]
        first = outlook.likely(tag_lists)
        self._tokenize([doc for doc, likely in zip(docs, first, strict=True) if likely])
        n_words = [doc.n_words if likely else None for doc, likely in zip(docs, first, strict=True)]
        possible = outlook.possible(tag_lists, n_words)
        second = [not likely and not possible.isdisjoint(tags) for likely, tags in zip(first, tag_lists, strict=True)]
        self._tokenize([doc for doc, needed in zip(docs, second, strict=True) if needed])
        kept = []
        for doc, likely, needed in zip(docs, first, second, strict=True):
            if likely or needed:
                kept.append(doc)
            else:
                report.drop("no_possible_label", doc.id)
        report.notes.update({"tokenized_first": sum(first), "tokenized_second": sum(second)})
        return kept
