from __future__ import annotations

import copy
import json
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imcm_build.document import Document
from imcm_build.pipeline import read_documents, run_steps
from imcm_build.report import BuildError, StepReport
from imcm_build.steps.labels import Labels
from imcm_build.steps.split import SPLITS, Split, id_sort_key, split_quality
from tests.conftest import shared_path

RATIOS = [(0.8, 0.1, 0.1), (0.7, 0.15, 0.15), (0.6, 0.2, 0.2)]


def make_doc(doc_id: str, labels: list[str]) -> Document:
    return Document(id=doc_id, title="", summary="", author_intro="", tags=list(labels), labels=list(labels))


def skewed_corpus(n_docs: int, n_labels: int, seed: int) -> list[Document]:
    """Zipf-like label frequencies and 1-4 labels per document, like Douban tags; ids are not contiguous."""
    rng = random.Random(seed)
    names = [f"标签{index}" for index in range(n_labels)]
    weights = [1 / (rank + 1) for rank in range(n_labels)]
    docs = []
    for number in range(n_docs):
        labels = set(rng.choices(names, weights, k=rng.randint(1, 4)))
        docs.append(make_doc(str(1000 + number * rng.randint(1, 9)) + str(number), sorted(labels)))
    return docs


def split_of(docs: list[Document]) -> dict[str, str]:
    return {doc.id: doc.split for doc in docs}


def run_split(docs: list[Document], **options: object) -> tuple[list[Document], StepReport]:
    report = StepReport("split")
    return Split(**options).run(docs, report), report


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_docs=st.integers(min_value=300, max_value=800),
    n_labels=st.integers(min_value=1, max_value=40),
    seed=st.integers(min_value=0, max_value=10_000),
    ratios=st.sampled_from(RATIOS),
)
def test_split_properties(n_docs: int, n_labels: int, seed: int, ratios: tuple[float, float, float]) -> None:
    """Disjoint, complete, sizes within 1% of the ratios (n >= 300 here; the sizes are in fact exact to
    rounding), deterministic, and independent of input order."""
    docs = skewed_corpus(n_docs, n_labels, seed)
    out, report = run_split(copy.deepcopy(docs), ratios=ratios)

    assert sorted(doc.id for doc in out) == sorted(doc.id for doc in docs)  # complete, no document twice
    assert {doc.split for doc in out} == set(SPLITS)  # each document in exactly one split
    sizes = {split: sum(doc.split == split for doc in out) for split in SPLITS}
    for split, ratio in zip(SPLITS, ratios, strict=True):
        assert abs(sizes[split] / n_docs - ratio) <= 0.01, (split, sizes)
    assert report.notes["sizes"] == sizes
    assert [doc.id for doc in out] == [
        doc.id for doc in sorted(out, key=lambda doc: (SPLITS.index(doc.split), id_sort_key(doc.id)))
    ]

    again, _ = run_split(copy.deepcopy(docs), ratios=ratios)
    shuffled = copy.deepcopy(docs)
    random.Random(seed + 1).shuffle(shuffled)
    from_shuffled, _ = run_split(shuffled, ratios=ratios)
    assert split_of(again) == split_of(out) == split_of(from_shuffled)


def test_a_different_seed_gives_a_different_split() -> None:
    docs = skewed_corpus(400, 20, seed=3)
    first, _ = run_split(copy.deepcopy(docs), seed=1)
    second, _ = run_split(copy.deepcopy(docs), seed=2)
    assert split_of(first) != split_of(second)


def test_ids_sort_numerically() -> None:
    assert sorted(["10", "9", "b", "100", "a"], key=id_sort_key) == ["9", "10", "100", "a", "b"]


def test_too_few_documents_is_a_clear_error_and_ten_is_enough() -> None:
    docs = [make_doc(str(i), ["小说"]) for i in range(10)]
    with pytest.raises(BuildError, match=r"9 document\(s\) cannot fill .*at least 10 documents are needed"):
        run_split(copy.deepcopy(docs[:9]))
    out, report = run_split(docs)
    assert report.notes["sizes"] == {"train": 8, "validation": 1, "test": 1}


def test_documents_without_labels_and_a_single_label_column_are_split() -> None:
    docs = [make_doc(str(i), [] if i % 2 else ["小说"]) for i in range(40)]
    out, report = run_split(docs)
    assert report.notes["sizes"] == {"train": 32, "validation": 4, "test": 4}


def test_a_label_absent_from_train_is_reported_as_a_warning() -> None:
    # With 40% train, iterative stratification sends a label's only document to the larger "rest" part;
    # on this corpus it then lands in validation, and the size correction leaves it there.
    docs = [make_doc(str(i), ["小说", "历史"][i % 2 : i % 2 + 1]) for i in range(25)]
    docs.append(make_doc("999", ["孤本"]))
    out, report = run_split(docs, ratios=(0.4, 0.3, 0.3))
    assert [doc.split for doc in out if "孤本" in doc.labels] == ["validation"]
    assert report.notes["labels_missing_from_split"] == {
        "train": ["孤本"],
        "validation": [],
        "test": ["孤本"],
    }
    assert report.notes["warnings"] == ["label '孤本' occurs only in validation/test, never in train"]


def test_split_quality_lists_a_label_seen_only_in_validation() -> None:
    names = ["小说", "仅验证"]
    matrix = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [1, 0], [1, 1]])
    assignment = np.array([0, 0, 0, 1, 2, 1])  # "仅验证" rows 3 and 5: both in validation
    notes = split_quality(matrix, assignment, names)
    assert notes["sizes"] == {"train": 3, "validation": 2, "test": 1}
    assert notes["labels_missing_from_split"] == {"train": ["仅验证"], "validation": [], "test": ["仅验证"]}
    assert len(notes["warnings"]) == 1 and "仅验证" in notes["warnings"][0]
    # 仅验证: whole set 2/6; train 0/3, validation 2/2, test 0/1 → max deviation 1 − 1/3
    assert notes["label_prevalence_deviation"]["worst_labels"]["仅验证"] == pytest.approx(2 / 3, abs=1e-6)


def test_real_labels_split_keeps_label_proportions() -> None:
    docs, _, _ = read_documents([shared_path("douban-public/records.jsonl")])
    result = run_steps(docs, [Labels(num_labels=158), Split()])
    labels_report, split_report = result.reports
    out = result.documents
    n_docs = len(out)
    assert (split_report.n_in, split_report.n_out, split_report.n_dropped) == (labels_report.n_out, n_docs, 0)
    assert split_report.notes["sizes"] == {
        "train": n_docs - 2 * round(n_docs * 0.1),
        "validation": round(n_docs * 0.1),
        "test": round(n_docs * 0.1),
    }
    label_names = labels_report.notes["label_names"]
    overall = {name: sum(name in doc.labels for doc in out) / n_docs for name in label_names}
    worst = 0.0
    for split in SPLITS:
        members = [doc for doc in out if doc.split == split]
        for name in label_names:
            share = sum(name in doc.labels for doc in members) / len(members)
            worst = max(worst, abs(share - overall[name]))
    deviation = split_report.notes["label_prevalence_deviation"]
    assert deviation["max_over_labels"] == pytest.approx(worst, abs=1e-6)
    assert worst < 0.01 and deviation["mean_over_labels"] < 0.002
    assert split_report.notes["warnings"] == []
    assert json.dumps(split_report.notes, ensure_ascii=False)  # JSON-serialisable


def test_ratios_that_leave_a_split_empty_fail_in_the_split_step_naming_the_sizes() -> None:
    docs = [make_doc(str(i), ["小说"]) for i in range(10)]
    with pytest.raises(BuildError, match=r"10 documents .* give train 0, validation 5, test 5: every split needs"):
        run_split(copy.deepcopy(docs), ratios=(0.1, 0.45, 0.45))
    out, report = run_split(docs + [make_doc("10", ["小说"])], ratios=(0.1, 0.45, 0.45))
    assert report.notes["sizes"] == {"train": 1, "validation": 5, "test": 5}
