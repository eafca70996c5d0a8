from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imcm_build import stats
from imcm_build.release import ReleaseError
from tests.conftest import shared_path

NUM_LABELS = 12


@st.composite
def label_sets(draw: st.DrawFn) -> tuple[list[list[int]], list[int]]:
    """A non-empty corpus: per document a set of label ids (possibly empty) and a word count."""
    n_docs = draw(st.integers(min_value=1, max_value=40))
    labels = st.lists(st.integers(0, NUM_LABELS - 1), unique=True, max_size=NUM_LABELS)
    label_lists = draw(st.lists(labels, min_size=n_docs, max_size=n_docs))
    lengths = draw(st.lists(st.integers(0, 500), min_size=n_docs, max_size=n_docs))
    return label_lists, lengths


@settings(max_examples=150, deadline=None)
@given(label_sets())
def test_cardinality_times_instances_is_total_assignments(corpus: tuple[list[list[int]], list[int]]) -> None:
    label_lists, lengths = corpus
    result = stats.compute_stats(label_lists, lengths, NUM_LABELS)
    total = sum(len(labels) for labels in label_lists)
    assert result["cardinality"] * result["instances"] == pytest.approx(total)
    assert result["label_assignments"] == total
    assert 0 <= result["density"] <= 1
    assert sum(result["labels_per_document"]) == len(label_lists)


@settings(max_examples=150, deadline=None)
@given(label_sets())
def test_imbalance_ratios_are_ordered(corpus: tuple[list[list[int]], list[int]]) -> None:
    label_lists, lengths = corpus
    result = stats.compute_stats(label_lists, lengths, NUM_LABELS)
    if result["labels"] == 0:
        assert result["ir"] is None and result["mean_ir"] is None and result["max_ir"] is None
        return
    assert 1 <= result["ir"] <= result["mean_ir"] <= result["max_ir"]


@settings(max_examples=100, deadline=None)
@given(label_sets(), st.randoms(use_true_random=False))
def test_statistics_do_not_depend_on_document_order(
    corpus: tuple[list[list[int]], list[int]], rng: random.Random
) -> None:
    label_lists, lengths = corpus
    order = list(range(len(label_lists)))
    rng.shuffle(order)
    shuffled = stats.compute_stats([label_lists[i] for i in order], [lengths[i] for i in order], NUM_LABELS)
    assert shuffled == stats.compute_stats(label_lists, lengths, NUM_LABELS)


def test_headline_ir_averages_the_most_frequent_half() -> None:
    # frequencies 8, 4, 2, 1 (L = 4): per-label IR 1, 2, 4, 8; top half = 1, 2
    label_lists = [[0, 1, 2, 3]] + [[0, 1, 2]] + [[0, 1]] * 2 + [[0]] * 4
    result = stats.compute_stats(label_lists, [10] * len(label_lists), num_labels=6)
    assert result["ir"] == pytest.approx(1.5)
    assert result["mean_ir"] == pytest.approx((1 + 2 + 4 + 8) / 4)
    assert result["max_ir"] == pytest.approx(8)
    assert result["labels"] == 4
    assert result["density"] == pytest.approx(result["cardinality"] / 6)
    assert result["labels_per_document"] == [0, 4, 2, 1, 1]
    assert result["distinct_label_sets"] == 4


def test_unused_labels_have_infinite_ratio_and_are_left_out() -> None:
    assert stats.imbalance_ratios([4, 0, 2]) == [1.0, math.inf, 2.0]
    assert stats.label_frequencies([[0], [2, 0]], 3) == [2, 0, 1]


def test_empty_set_has_undefined_statistics() -> None:
    result = stats.compute_stats([], [], 3)
    assert result["instances"] == 0
    assert result["cardinality"] is None and result["ir"] is None and result["mean_length_words"] is None


@pytest.mark.parametrize(
    ("label_lists", "message"),
    [
        ([[0], [3]], "document 1: label id 3 is outside 0..2"),
        ([[1, 1]], "document 0: a label id is listed twice"),
    ],
)
def test_bad_label_ids_name_the_document(label_lists: list[list[int]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stats.compute_stats(label_lists, [1] * len(label_lists), 3)


def test_lengths_must_match_documents() -> None:
    with pytest.raises(ValueError, match="2 label lists but 1 lengths"):
        stats.compute_stats([[0], [1]], [5], 2)


def test_aapd_headline_ir_matches_an_independent_computation() -> None:
    folder = shared_path("aapd/blalalt-bert")
    docs = [doc for name in ("val.json", "test.json") for doc in json.loads((folder / name).read_text())]
    names = sorted({label for doc in docs for label in doc["label"]})
    index = {name: i for i, name in enumerate(names)}
    label_lists = [[index[label] for label in doc["label"]] for doc in docs]
    lengths = [len(doc["text"].split()) for doc in docs]

    result = stats.compute_stats(label_lists, lengths, len(names))

    indicator = np.zeros((len(docs), len(names)))
    for row, labels in enumerate(label_lists):
        indicator[row, labels] = 1
    freq = np.sort(indicator.sum(axis=0))[::-1]
    freq = freq[freq > 0]
    ratios = freq[0] / freq
    expected_ir = ratios[: math.ceil(len(freq) / 2)].mean()
    assert result["instances"] == 2000
    assert result["labels"] == 54
    assert result["cardinality"] == pytest.approx(indicator.sum() / len(docs))
    assert result["ir"] == pytest.approx(expected_ir)
    assert result["mean_ir"] == pytest.approx(ratios.mean())
    assert result["max_ir"] == pytest.approx(ratios.max())
    assert result["ir"] == pytest.approx(7.1, abs=0.1)  # paper: 6.58 on the full AAPD
    assert result["mean_length_words"] == pytest.approx(np.mean(lengths))


def _stats_with_rows() -> dict:
    row = stats.compute_stats([[0, 1], [0]], [3, 5], 2)
    empty = stats.compute_stats([], [], 2)
    return {
        "num_labels": 2,
        "sets": {"all": row, "train": row, "validation": empty, "test": row},
        "labels": [],
    }


def test_table1_has_a_row_per_set_and_dashes_for_undefined_values() -> None:
    table = stats.format_table1(_stats_with_rows())
    lines = table.strip().splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["All", "Train", "Validation", "Test"]
    assert lines[2].startswith("| All | 2 | 2 | 1.500 | 0.7500 | 4.00 | 1.00 | 1.50 | 2.00 |")
    assert "| Validation | 0 | 0 | – |" in table


def test_stats_round_trip_through_json(tmp_path) -> None:
    path = tmp_path / "stats.json"
    original = _stats_with_rows()
    stats.write_stats(original, path)
    assert stats.read_stats(path) == original


def test_write_stats_refuses_infinity(tmp_path) -> None:
    with pytest.raises(ValueError):
        stats.write_stats({"sets": {}, "labels": [{"ir": math.inf}]}, tmp_path / "stats.json")


def test_read_stats_names_the_file_and_line(tmp_path) -> None:
    path = tmp_path / "stats.json"
    path.write_text('{"sets": {},\n oops}')
    with pytest.raises(ReleaseError, match=r"stats.json:2: malformed JSON"):
        stats.read_stats(path)
    with pytest.raises(ReleaseError, match="missing"):
        stats.read_stats(tmp_path / "absent.json")
