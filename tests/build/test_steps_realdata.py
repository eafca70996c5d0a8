"""All build steps together on the real shared records."""

from __future__ import annotations

import copy
import json

import pytest

from imcm_build.config import BuildConfig
from imcm_build.pipeline import read_documents, run_steps
from imcm_build.steps import Clean, Deduplicate, Labels, LengthFilter, Split, Tokenize, build_steps
from tests.conftest import shared_path


def test_build_steps_order_and_configuration() -> None:
    config = BuildConfig(
        to_simplified=True,
        near_dedup=False,
        minhash_threshold=0.8,
        min_words=30,
        workers=1,
        num_labels=20,
        seed=7,
    )
    steps = build_steps(config)
    assert [type(step) for step in steps] == [Clean, Deduplicate, Tokenize, LengthFilter, Labels, Split]
    assert [step.name for step in steps] == ["clean", "dedup", "tokenize", "length", "labels", "split"]
    clean, dedup, _, length, labels, split = steps
    assert clean.to_simplified and not dedup.near and dedup.threshold == 0.8
    assert (length.min_words, labels.num_labels, split.seed) == (30, 20, 7)


def test_usertag_records_match_the_data_cards_table_1() -> None:
    """stats.json (computed independently with plain jieba on the summaries) reports 1,461 records with
    >= 50 words (248 dropped), none left without a top-158 tag, mean length 131.79 words."""
    stats = json.loads(shared_path("douban-public/stats.json").read_text(encoding="utf-8"))[
        "table1_usertags_top158"
    ]
    docs, _, _ = read_documents([shared_path("douban-public/records-usertags.jsonl")])
    result = run_steps(docs, [Clean(), Tokenize(), LengthFilter(min_words=50), Labels(num_labels=158)])
    clean, tokenize, length, labels = result.reports
    assert clean.n_dropped == tokenize.n_dropped == 0
    assert dict(length.dropped) == {"too_short": stats["dropped_under_50_words"]}
    assert labels.n_dropped == stats["dropped_no_tag_left"]
    assert len(result.documents) == stats["instances"]
    mean_words = sum(doc.n_words for doc in result.documents) / len(result.documents)
    assert mean_words == pytest.approx(stats["mean_len_words"], abs=0.05)


def test_whole_step_chain_on_real_records() -> None:
    docs, _, _ = read_documents([shared_path("douban-public/records-usertags.jsonl")])
    n_read = len(docs)
    steps = build_steps(BuildConfig())
    result = run_steps(docs, steps)  # also checks in − dropped == out for every step
    reports = {report.name: report for report in result.reports}
    assert reports["clean"].n_in == n_read
    assert all(a.n_out == b.n_in for a, b in zip(result.reports, result.reports[1:], strict=False))
    assert set(reports["dedup"].dropped) <= {"exact_duplicate", "near_duplicate"}
    label_names = steps[4].label_names_
    assert reports["labels"].notes["label_names"] == label_names and len(label_names) == 158
    out = result.documents
    assert len({doc.id for doc in out}) == len(out) == reports["split"].n_out
    for doc in out:
        assert doc.split in ("train", "validation", "test")
        assert doc.labels and set(doc.labels) <= set(label_names)
        assert doc.labels == sorted(doc.labels, key=label_names.index)
        assert doc.n_words >= 50 and doc.tokens and doc.text
    for report in result.reports:
        json.dumps(report.to_dict(), ensure_ascii=False)


def test_the_whole_chain_gives_the_same_documents_with_one_or_two_workers() -> None:
    docs = read_documents([shared_path("douban-public/records.jsonl")])[0][:2500]
    outputs = []
    for workers in (1, 2):
        result = run_steps(copy.deepcopy(docs), build_steps(BuildConfig(num_labels=40)), workers=workers)
        outputs.append(
            ([(d.id, d.title, d.text, d.tokens, d.n_words, d.tags, d.labels, d.split, d.meta) for d in result.documents],
             [report.to_dict() | {"seconds": None} for report in result.reports])
        )
    assert outputs[0] == outputs[1] and len(outputs[0][0]) > 1000
