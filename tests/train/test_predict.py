from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from imcm_build.release import REPORT_FILE, read_label_names, read_split
from imcm_build.text import text_to_tokens, tokenize
from imcm_train.cli import main
from imcm_train.data import EncodedSplit, Vocabulary
from imcm_train.predict import PredictError, Predictor
from imcm_train.tokenization import TOKENIZER_FILE, TextTokenizer
from imcm_train.train import TrainConfig, fit, predict_scores
from tests.conftest import shared_path
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


# MANAGEMENT in traditional characters
MANAGEMENT_TRADITIONAL = "本書是管理大師彼得·德魯克的經典著作，討論了管理者如何提高組織的有效性和工作效率。"


def test_a_to_simplified_release_converts_traditional_text_at_predict_time(small_release: Path, tmp_path: Path) -> None:
    """The release is the fixture with its build report saying --to-simplified (its tokens are simplified anyway)."""
    release = tmp_path / "simplified"
    shutil.copytree(small_release, release)
    report = json.loads((release / REPORT_FILE).read_text(encoding="utf-8"))
    assert report["config"]["to_simplified"] is False
    report["config"]["to_simplified"] = True
    (release / REPORT_FILE).write_text(json.dumps(report), encoding="utf-8")
    fit(TrainConfig(release=str(release), out=str(tmp_path / "br"), model="br", progress=False))

    assert json.loads((tmp_path / "br" / TOKENIZER_FILE).read_text()) == {"kind": "build", "to_simplified": True}
    predictor = Predictor(tmp_path / "br")
    assert predictor.tokenizer(MANAGEMENT_TRADITIONAL) == tokenize(MANAGEMENT)
    np.testing.assert_array_equal(predictor.scores([MANAGEMENT_TRADITIONAL]), predictor.scores([MANAGEMENT]))

    (tmp_path / "br" / TOKENIZER_FILE).unlink()  # a run folder from before tokenizer.json: jieba as it was
    old = Predictor(tmp_path / "br")
    assert old.tokenizer(MANAGEMENT_TRADITIONAL) == text_to_tokens(MANAGEMENT_TRADITIONAL) != tokenize(MANAGEMENT)


@pytest.fixture(scope="module")
def aapd_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """br on the real AAPD slice imported as `imcm-build import aapd --split train=val.json --split test=test.json`."""
    from imcm_build.importers.aapd import import_aapd

    folder = tmp_path_factory.mktemp("aapd")
    release = import_aapd([shared_path("aapd/blalalt-bert")], folder / "release",
                          split_map={"train": "val.json", "test": "test.json"}, figures=False)
    fit(TrainConfig(release=str(release), out=str(folder / "br"), model="br", threshold=0.2, progress=False))
    return folder / "br"


def test_an_imported_aapd_run_tokenizes_new_text_as_the_source_did(aapd_run: Path) -> None:
    predictor = Predictor(aapd_run)
    assert predictor.tokenizer == TextTokenizer("aapd")
    raw = "We extend the results of Adcock, Carlsson (2015) w.r.t. multi-label codes? Carlsson's bound holds."
    source_tokens = ["we", "extend", "the", "results", "of", "adcock", ",", "carlsson", "\\(", "2015", "\\)", "w",
                     "r", "t", "multi", "label", "codes", "?", "carlsson", "'s", "bound", "holds"]
    assert predictor.tokenizer(raw) == source_tokens
    expected = predictor.estimator.predict_scores([" ".join(source_tokens)])
    np.testing.assert_allclose(predictor.scores([raw]), expected)
    assert TextTokenizer("rcv1")("Brazil's state-owned giant, S&P N/A.") == ["Brazils", "stateowned", "giant", "S&P", "N/A"]


def test_predict_uses_the_runs_threshold_by_default(aapd_run: Path, capsys: pytest.CaptureFixture) -> None:
    text = "We study the capacity of wireless channels with feedback."
    assert Predictor(aapd_run).predict([text])[0].threshold == 0.2
    assert main(["predict", "--run", str(aapd_run), "--text", text]) == 0
    assert json.loads(capsys.readouterr().out)["threshold"] == 0.2
