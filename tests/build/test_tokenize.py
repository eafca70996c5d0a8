"""Tokenize (in this process and in the build's worker pool) and LengthFilter, which reads its word counts."""

from __future__ import annotations

import pytest

from imcm_build.document import Document
from imcm_build.pipeline import PARALLEL_MIN_ITEMS, chunked, parallel_map, run_steps, worker_pool
from imcm_build.report import StepReport
from imcm_build.steps.length import LengthFilter
from imcm_build.steps.tokenize import Tokenize
from imcm_build.text import count_words, tokenize
from tests.build.realdata import cleaned_real_docs


def make_doc(doc_id: str, text: str) -> Document:
    return Document(id=doc_id, title="", summary=text, author_intro="", tags=["小说"], text=text)


def test_serial_tokenize_fills_tokens_and_word_counts() -> None:
    docs = [make_doc("1", "我爱读书。Python 编程 3 本！"), make_doc("2", "，。！")]
    report = StepReport("tokenize")
    out = Tokenize().run(docs, report)
    assert out is docs
    assert docs[0].tokens == tokenize("我爱读书。Python 编程 3 本！")
    assert " " not in "".join(docs[0].tokens)
    assert (
        docs[0].n_words == count_words(docs[0].tokens) == len([t for t in docs[0].tokens if t not in "。！"])
    )
    assert docs[1].n_words == 0 and docs[1].tokens == ["，", "。", "！"]
    assert report.n_dropped == 0 and report.notes["words"] == docs[0].n_words


def test_tokenizing_in_the_worker_pool_equals_tokenizing_here_on_real_records() -> None:
    docs = cleaned_real_docs(PARALLEL_MIN_ITEMS + 100)
    assert len(docs) >= PARALLEL_MIN_ITEMS
    step = Tokenize()
    report = StepReport("tokenize")
    with worker_pool([step], workers=2) as workers:
        assert workers == 2
        step.run(docs, report)
    for doc in docs:
        expected = tokenize(doc.text)
        assert doc.tokens == expected, doc.id
        assert doc.n_words == count_words(expected), doc.id
    assert report.notes["words"] == sum(doc.n_words for doc in docs)


def test_parallel_map_keeps_order_and_runs_here_without_a_pool() -> None:
    items = list(range(PARALLEL_MIN_ITEMS * 2))
    assert parallel_map(str, items) == [str(item) for item in items]  # no pool: in this process
    with worker_pool([], workers=2):
        assert parallel_map(str, items) == [str(item) for item in items]
        assert parallel_map(str, items[:3]) == ["0", "1", "2"]
    with pytest.raises(ValueError, match="workers must be >= 0"), worker_pool([], workers=-1):
        pass


def test_chunks_cover_all_texts_in_order() -> None:
    texts = [str(i) for i in range(10)]
    chunks = chunked(texts, 4)
    assert len(chunks) <= 4 and [t for chunk in chunks for t in chunk] == texts


def text_with_words(n_words: int) -> str:
    """Real Chinese text with exactly `n_words` words by count_words (checked, not assumed)."""
    text = "我爱读书。" * (n_words // 3) + "读书" * (n_words % 3)
    assert count_words(tokenize(text)) == n_words
    return text


def test_length_filter_keeps_fifty_words_and_drops_forty_nine() -> None:
    docs = [
        make_doc("49", text_with_words(49)),
        make_doc("50", text_with_words(50)),
        make_doc("51", text_with_words(51)),
    ]
    result = run_steps(docs, [Tokenize(), LengthFilter(min_words=50)], workers=1)
    tokenize_report, length_report = result.reports
    assert [doc.id for doc in result.documents] == ["50", "51"]
    assert [doc.n_words for doc in result.documents] == [50, 51]
    assert (length_report.n_in, length_report.n_out, dict(length_report.dropped)) == (3, 2, {"too_short": 1})
    assert length_report.examples["too_short"] == ["49"]
    assert length_report.notes["min_words"] == 50
    assert length_report.notes["words_before"]["p0"] == 49 and length_report.notes["words_after"]["p0"] == 50


def test_real_records_tokenize_then_length_report_counts() -> None:
    docs = cleaned_real_docs(1000)
    result = run_steps(docs, [Tokenize(), LengthFilter()])
    tokenize_report, length_report = result.reports
    assert (tokenize_report.n_in, tokenize_report.n_out, tokenize_report.n_dropped) == (
        len(docs),
        len(docs),
        0,
    )
    too_short = [doc.id for doc in docs if count_words(tokenize(doc.text)) < 50]
    assert length_report.dropped["too_short"] == len(too_short) > 0
    assert length_report.n_out == len(docs) - len(too_short)
    assert all(doc.n_words >= 50 for doc in result.documents)
