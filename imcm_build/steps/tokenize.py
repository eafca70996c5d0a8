"""Tokenize: jieba accurate mode (`imcm_build.text.tokenize`) on every `doc.text`, in parallel.

Large inputs are cut into a few big chunks of texts (only the texts travel to the workers, and the
tokens come back as one space-joined string per text, which is cheap to pickle; tokens never contain
whitespace, so splitting on " " restores them exactly). jieba's dictionary is loaded once in the
parent before the pool starts: with the "fork" start method the workers inherit it, and with any other
start method the pool initializer loads it once per worker. Below `PARALLEL_MIN_DOCS` documents, or
with one worker, everything runs in this process. The output is the same either way; nothing is dropped.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence

from tqdm import tqdm

from imcm_build.document import Document
from imcm_build.report import StepReport
from imcm_build.text import count_words, load_tokenizer, tokenize

PARALLEL_MIN_DOCS = 400
CHUNKS_PER_WORKER = 4


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def tokenize_joined(texts: Sequence[str]) -> list[str]:
    """Tokens of each text, joined by single spaces (the worker's unit of work)."""
    return [" ".join(tokenize(text)) for text in texts]


def _load_jieba() -> None:
    load_tokenizer()


def _pool_context() -> multiprocessing.context.BaseContext:
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def chunked(texts: Sequence[str], n_chunks: int) -> list[Sequence[str]]:
    """`texts` in at most `n_chunks` contiguous chunks of near-equal size."""
    size = -(-len(texts) // max(n_chunks, 1))
    return [texts[start : start + size] for start in range(0, len(texts), size)]


class Tokenize:
    """Build step: fill `doc.tokens` and `doc.n_words`; never drops a document."""

    name = "tokenize"

    def __init__(self, workers: int = 0) -> None:
        if workers < 0:
            raise ValueError(f"Tokenize: workers must be >= 0 (0 = all cores), got {workers}")
        self.workers = workers or available_cores()

    def run(self, docs: list[Document], report: StepReport) -> list[Document]:
        texts = [doc.text for doc in docs]
        workers = self.workers if len(texts) >= PARALLEL_MIN_DOCS else 1
        joined = self._tokenize_all(texts, workers)
        for doc, tokens in zip(docs, joined, strict=True):
            doc.tokens = tokens.split(" ") if tokens else []
            doc.n_words = count_words(doc.tokens)
        report.notes.update(
            {
                "workers": workers,
                "tokens": sum(len(doc.tokens) for doc in docs),
                "words": sum(doc.n_words for doc in docs),
            }
        )
        return docs

    @staticmethod
    def _tokenize_all(texts: list[str], workers: int) -> list[str]:
        _load_jieba()
        n_chunks = 1 if workers == 1 else workers * CHUNKS_PER_WORKER
        chunks = chunked(texts, n_chunks) if texts else []
        results: list[str] = []
        # disable=None: a bar on a terminal, nothing in logs, CI or tests
        with tqdm(total=len(texts), desc="tokenize", unit="doc", disable=None) as bar:
            if workers == 1:
                for chunk in chunked(texts, max(1, len(texts) // 50)) if texts else []:
                    results += tokenize_joined(chunk)
                    bar.update(len(chunk))
                return results
            with _pool_context().Pool(processes=workers, initializer=_load_jieba) as pool:
                for chunk in pool.imap(tokenize_joined, chunks, chunksize=1):
                    results += chunk
                    bar.update(len(chunk))
        return results
