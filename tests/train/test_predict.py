from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imcm_build.release import read_label_names, read_split
from imcm_build.text import tokenize
from imcm_train.cli import main
from imcm_train.data import EncodedSplit, Vocabulary
from imcm_train.predict import PredictError, Predictor
from imcm_train.train import TrainConfig, fit, predict_scores
from tests.train.conftest import TINY_HPARAMS, TINY_TRAIN_OPTIONS

# Real Douban summaries (not in the 600-record fixture): a science-fiction novel and a management book.
SCIENCE_FICTION = "文化大革命如火如荼进行的同时，军方探寻外星文明的绝秘计划“红岸工程”取得了突破性进展。"
MANAGEMENT = "本书是管理大师彼得·德鲁克的经典著作，讨论了管理者如何提高组织的有效性和工作效率。"


@pytest.fixture(scope="module")
def run(small_release: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("predict") / "run"
    options = {**TINY_TRAIN_OPTIONS, "hparams": TINY_HPARAMS["altxml"], "epochs": 2, "lr": 0.005}
    fit(TrainConfig(release=str(small_release), out=str(out), model="altxml", **options))
    return out


def test_predict_scores_chinese_text_exactly_as_training_encodes_it(run: Path, small_release: Path) -> None:
    predictor = Predictor(run)
    test = read_split(small_release, "test")
    texts = test.texts[:5]
    assert [" ".join(tokenize(text)) for text in texts] == test.tokens[:5]  # the build's tokenizer
    vocabulary = Vocabulary.load(run / "vocab.json")
    encoded = EncodedSplit([vocabulary.encode(t.split(), 64) for t in test.tokens[:5]], [[]] * 5, 20)
    expected = predict_scores(predictor.model, encoded, 8, predictor.model.embedding.embedding.weight.device)
    np.testing.assert_allclose(predictor.scores(texts), expected, rtol=1e-5, atol=1e-6)


def test_predictions_list_labels_above_the_threshold_best_first(run: Path, small_release: Path) -> None:
    predictor = Predictor(run)
    names = read_label_names(small_release)
    low, fixed = predictor.predict([SCIENCE_FICTION, MANAGEMENT], threshold=0.01), predictor.predict([SCIENCE_FICTION], 0.5)
    for prediction in low:
        scores = [score for _, score in prediction.labels]
        assert scores == sorted(scores, reverse=True) and min(scores) >= 0.01
        assert {label for label, _ in prediction.labels} <= set(names)
        assert len(prediction.top) == 5 and prediction.top == prediction.labels[:5]
    assert all(score >= 0.5 for _, score in fixed[0].labels)
    tuned = json.loads((run / "test_metrics.json").read_text())["tuned_threshold"]
    assert predictor.predict([MANAGEMENT], threshold="tuned")[0].threshold == tuned


def test_bad_threshold_and_empty_text_are_user_errors(run: Path) -> None:
    predictor = Predictor(run)
    with pytest.raises(PredictError, match="threshold must be 'tuned' or a number"):
        predictor.predict([MANAGEMENT], threshold="high")
    with pytest.raises(PredictError, match=r"threshold must be in \(0, 1\)"):
        predictor.predict([MANAGEMENT], threshold=1.5)
    with pytest.raises(PredictError, match=r"text\(s\) number \[2\] have no tokens"):
        predictor.predict([MANAGEMENT, "   "])
    with pytest.raises(PredictError, match="is not a run folder"):
        Predictor(run.parent / "missing")


def test_cli_predict_prints_json_lines_and_tables(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["predict", "--run", str(run), "--text", SCIENCE_FICTION, "--text", MANAGEMENT, "--threshold", "0.2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == [SCIENCE_FICTION, MANAGEMENT]
    assert all(label["score"] >= 0.2 for line in lines for label in line["labels"])
    texts = tmp_path / "texts.txt"
    texts.write_text(f"{SCIENCE_FICTION}\n\n{MANAGEMENT}\n", encoding="utf-8")
    assert main(["predict", "--run", str(run), "--file", str(texts), "--format", "table", "--threshold", "tuned"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 2 and table[0].startswith(SCIENCE_FICTION[:10])
    assert main(["predict", "--run", str(tmp_path / "nope"), "--text", MANAGEMENT]) == 2
    assert "is not a run folder" in capsys.readouterr().err


def test_a_baseline_run_predicts_through_the_same_interface(small_release: Path, tmp_path: Path) -> None:
    fit(TrainConfig(release=str(small_release), out=str(tmp_path / "br"), model="br"))
    predictor = Predictor(tmp_path / "br")
    (prediction,) = predictor.predict([MANAGEMENT], threshold="tuned", top_k=3)
    assert len(prediction.top) == 3 and all(score >= prediction.threshold for _, score in prediction.labels)
    expected = predictor.estimator.predict_scores([" ".join(tokenize(MANAGEMENT))])
    np.testing.assert_allclose(predictor.scores([MANAGEMENT]), expected)
