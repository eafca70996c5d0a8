"""Metrics against small cases computed by hand (the arithmetic is written next to each expectation)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from imcm_train.metrics import (
    THRESHOLD_GRID,
    UnknownLabelError,
    evaluate,
    frequency_bands,
    precision_at_k,
    to_indicator,
    tune_threshold,
)

# 3 documents x 4 labels. Predicted at 0.5: doc0 {0,3}, doc1 {1}, doc2 {0,2}.
Y_TRUE = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 1]], dtype=np.uint8)
SCORES = np.array([[0.9, 0.2, 0.4, 0.6], [0.1, 0.8, 0.3, 0.2], [0.7, 0.45, 0.55, 0.1]])


def test_micro_precision_recall_f1_by_hand() -> None:
    result = evaluate(Y_TRUE, SCORES)
    # TP: doc0 label0, doc1 label1, doc2 label0 = 3; predicted 2+1+2 = 5; gold 2+1+3 = 6
    assert result["micro_precision"] == pytest.approx(3 / 5)
    assert result["micro_recall"] == pytest.approx(3 / 6)
    assert result["micro_f1"] == pytest.approx(2 * 3 / (5 + 6))


def test_per_label_and_macro_f1_by_hand() -> None:
    result = evaluate(Y_TRUE, SCORES)
    # label0: gold {0,2} pred {0,2} -> 1; label1: gold {1,2} pred {1} -> 2*1/(2*1+0+1) = 2/3;
    # label2: gold {0} pred {2} -> 0; label3: gold {2} pred {0} -> 0
    assert result["per_label_f1"] == pytest.approx([1.0, 2 / 3, 0.0, 0.0])
    assert result["macro_f1"] == pytest.approx((1 + 2 / 3 + 0 + 0) / 4)


def test_example_f1_and_hamming_loss_by_hand() -> None:
    result = evaluate(Y_TRUE, SCORES)
    # doc0 {0,2} vs {0,3}: 2*1/(2+2) = 0.5; doc1 {1} vs {1}: 1; doc2 {0,1,3} vs {0,2}: 2*1/(3+2) = 0.4
    assert result["example_f1"] == pytest.approx((0.5 + 1 + 0.4) / 3)
    # wrong cells: doc0 labels 2,3; doc2 labels 1,2,3 -> 5 of 12
    assert result["hamming_loss"] == pytest.approx(5 / 12)


def test_precision_at_k_by_hand() -> None:
    result = evaluate(Y_TRUE, SCORES)
    # top-1: label0, label1, label0 -> all gold
    assert result["p@1"] == pytest.approx(1.0)
    # top-3: doc0 {0,3,2} 2 hits; doc1 {1,2,3} 1 hit; doc2 {0,2,1} 2 hits -> (2+1+2)/(3*3)
    assert result["p@3"] == pytest.approx(5 / 9)
    # only 4 labels: top-5 is every label, so hits = gold count 2,1,3, still divided by 5
    assert result["p@5"] == pytest.approx((2 + 1 + 3) / (5 * 3))


def test_precision_at_k_breaks_ties_by_label_id() -> None:
    y_true = np.array([[0, 0, 1, 1]])
    equal_scores = np.full((1, 4), 0.5)
    assert precision_at_k(y_true, equal_scores, 1) == 0.0  # label 0 first
    assert precision_at_k(y_true, equal_scores, 3) == pytest.approx(1 / 3)  # labels 0,1,2: one hit


def test_precision_at_k_of_seq2seq_label_sets() -> None:
    # 0/1 scores: predicted labels {1,3} in id order, then unpredicted 0, 2
    y_true = np.array([[1, 1, 0, 0]])
    label_set = np.array([[0.0, 1.0, 0.0, 1.0]])
    assert precision_at_k(y_true, label_set, 1) == 1.0  # label 1
    assert precision_at_k(y_true, label_set, 3) == pytest.approx(2 / 3)  # labels 1, 3, 0


def test_band_f1_follows_label_ids_without_frequencies() -> None:
    result = evaluate(Y_TRUE, SCORES)
    # 4 labels split 2/1/1: head {0,1}, torso {2}, tail {3}
    # head micro: label0 tp2, label1 tp1 fn1 -> 2*3/(2*3+0+1) = 6/7; head macro (1 + 2/3)/2
    assert result["band_f1"] == pytest.approx({"head": 6 / 7, "torso": 0.0, "tail": 0.0})
    assert result["band_macro_f1"] == pytest.approx({"head": 5 / 6, "torso": 0.0, "tail": 0.0})


def test_band_f1_uses_training_frequencies() -> None:
    result = evaluate(Y_TRUE, SCORES, label_frequency=np.array([1, 5, 3, 2]))
    # rank: label1 (5), label2 (3), label3 (2), label0 (1) -> head {1,2}, torso {3}, tail {0}
    # head micro: label1 tp1 fn1 + label2 fp1 fn1 -> tp1 fp1 fn2 -> 2/(2+1+2)
    assert result["band_f1"] == pytest.approx({"head": 2 / 5, "torso": 0.0, "tail": 1.0})
    assert result["band_macro_f1"] == pytest.approx({"head": (2 / 3 + 0) / 2, "torso": 0.0, "tail": 1.0})


def test_evaluate_result_is_json_plain() -> None:
    result = evaluate(Y_TRUE, SCORES, threshold=0.4, label_frequency=np.array([1, 5, 3, 2]))
    assert json.loads(json.dumps(result)) == result
    assert type(result["micro_f1"]) is float and type(result["per_label_f1"][0]) is float
    assert result["threshold"] == 0.4


def test_evaluate_rejects_mismatched_or_invalid_input() -> None:
    with pytest.raises(ValueError, match="same shape"):
        evaluate(Y_TRUE, SCORES[:, :3])
    with pytest.raises(ValueError, match="0/1 indicator"):
        evaluate(Y_TRUE * 2, SCORES)
    with pytest.raises(ValueError, match="NaN"):
        evaluate(Y_TRUE, np.where(SCORES > 0.8, np.nan, SCORES))
    with pytest.raises(ValueError, match="at least 2 labels"):
        evaluate(Y_TRUE[:, :1], SCORES[:, :1])
    with pytest.raises(ValueError, match="3 entries for 4 labels"):
        evaluate(Y_TRUE, SCORES, label_frequency=np.array([3, 2, 1]))


def test_frequency_bands_nine_labels_split_three_three_three() -> None:
    frequency = np.array([50, 3, 20, 7, 9, 1, 30, 2, 12])
    # descending: 0 (50), 6 (30), 2 (20) | 8 (12), 4 (9), 3 (7) | 1 (3), 7 (2), 5 (1)
    expected = np.empty(9, dtype=int)
    expected[[0, 6, 2]], expected[[8, 4, 3]], expected[[1, 7, 5]] = 0, 1, 2
    np.testing.assert_array_equal(frequency_bands(frequency), expected)


def test_frequency_bands_give_the_remainder_to_earlier_bands() -> None:
    # equal frequencies rank by label id; 10 labels -> 4/3/3, 11 labels -> 4/4/3
    np.testing.assert_array_equal(frequency_bands(np.ones(10)), [0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    assert np.bincount(frequency_bands(np.arange(11))).tolist() == [4, 4, 3]


def test_tune_threshold_beats_half_on_low_scores() -> None:
    y_true = np.array([[1, 0], [0, 1], [1, 0]])
    # every gold score lies in 0.35..0.45, every other score <= 0.2: nothing reaches 0.5
    scores = np.array([[0.4, 0.1], [0.2, 0.35], [0.45, 0.15]])
    threshold = tune_threshold(y_true, scores)
    # thresholds 0.21..0.35 are all perfect; 0.35 is the one closest to 0.5
    assert threshold == pytest.approx(0.35)
    assert evaluate(y_true, scores, threshold)["micro_f1"] == 1.0
    assert evaluate(y_true, scores, 0.5)["micro_f1"] == 0.0


def test_tune_threshold_prefers_half_when_it_is_as_good() -> None:
    y_true = np.array([[1, 0, 1], [0, 1, 0]])
    assert tune_threshold(y_true, y_true.astype(float)) == 0.5  # 0/1 scores: every cut in (0, 1] is perfect
    assert tune_threshold(y_true, np.where(y_true, 0.7, 0.3)) == 0.5


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), docs=st.integers(1, 30), labels=st.integers(2, 12))
def test_tune_threshold_matches_brute_force_search(seed: int, docs: int, labels: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = (rng.random((docs, labels)) < 0.3).astype(np.uint8)
    scores = np.round(rng.random((docs, labels)), 2)  # rounded: scores that sit exactly on grid points
    brute_force = [f1_score(y_true, scores >= t, average="micro", zero_division=0) for t in THRESHOLD_GRID]
    best = f1_score(y_true, scores >= tune_threshold(y_true, scores), average="micro", zero_division=0)
    assert best == pytest.approx(max(brute_force), abs=1e-12)


def test_to_indicator_sets_the_listed_ids() -> None:
    indicator = to_indicator([[0, 2], [], [3, np.int64(1)]], 4)
    assert indicator.dtype == np.uint8
    np.testing.assert_array_equal(indicator, [[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 1]])


@pytest.mark.parametrize(
    ("label_lists", "reason"),
    [
        ([[0, 2], [5]], "document 1: unknown label id 5 (valid ids are 0..3)"),
        ([[-1]], "document 0: unknown label id -1"),
        ([[0], [1], [True]], "document 2: label True is not an integer"),
        ([[1.0]], "document 0: label 1.0 is not an integer"),
    ],
)
def test_unknown_labels_raise_with_place_and_reason(label_lists: list, reason: str) -> None:
    with pytest.raises(UnknownLabelError) as error:
        to_indicator(label_lists, 4, where="release/data/test-00000-of-00001.parquet")
    assert str(error.value).startswith("release/data/test-00000-of-00001.parquet: ")
    assert reason in str(error.value)
    assert isinstance(error.value, ValueError)
