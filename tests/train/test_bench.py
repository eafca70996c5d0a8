"""CLI smoke test: `imcm-train bench` with every model for one epoch on a small real-Douban release."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from imcm_build.release import parquet_path
from imcm_train.bench import METRIC_COLUMNS, PAPER_ORDER, BenchConfig, aggregate, parse_models, run_config
from imcm_train.cli import main
from imcm_train.train import ConfigError, TrainConfig

SMALL_FLAGS = [
    "--max-length", "64", "--max-vocab", "2000", "--batch-size", "32", "--embed-dim", "16", "--hidden", "16",
    "--hparam", "num_filters=8", "--hparam", "label_embed_dim=16", "--hparam", "num_layers=1",
    "--hparam", "beam_size=1", "--no-progress",
]


@pytest.mark.slow
def test_bench_every_model_writes_table_2_and_resumes_without_retraining(
    small_release: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "bench"
    argv = ["bench", "--release", str(small_release), "--models", "all", "--seeds", "1", "--epochs", "1",
            "--out", str(out), *SMALL_FLAGS]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    rows = json.loads((out / "table.json").read_text(encoding="utf-8"))["rows"]
    assert [row["model"] for row in rows] == list(PAPER_ORDER)
    for row in rows:
        for column, _ in METRIC_COLUMNS:
            assert 0 <= row[column]["mean"] <= 1 and row[column]["std"] == 0
        assert row["samples/s"]["mean"] > 0 and row["device"].startswith("cpu")
    for model in PAPER_ORDER:
        summary = json.loads((out / "results" / f"{model}-seed42.json").read_text(encoding="utf-8"))
        test_metrics = json.loads((out / "runs" / model / "seed42" / "test_metrics.json").read_text(encoding="utf-8"))
        assert summary["test"]["micro_f1"] == test_metrics["at_threshold"]["micro_f1"]
        config = json.loads((out / "runs" / model / "seed42" / "config.json").read_text(encoding="utf-8"))
        assert config["max_length"] == 64 and config["seed"] == 42
    assert json.loads((out / "runs" / "sgm" / "seed42" / "config.json").read_text())["hparams"] == {
        "embed_dim": 16, "encoder_hidden": 16, "num_layers": 1, "beam_size": 1}
    with open(out / "table.csv", encoding="utf-8") as handle:
        assert [line["model"] for line in csv.DictReader(handle)] == list(PAPER_ORDER)
    markdown = (out / "table.md").read_text(encoding="utf-8")
    assert markdown in printed
    assert sum(line.startswith("| ") for line in markdown.splitlines()) == 1 + len(PAPER_ORDER)

    (out / "results" / "cnn-seed42.json").unlink()  # as if the bench died before recording cnn
    assert main(argv) == 0
    log = capsys.readouterr().out
    assert "cnn seed 42: training" in log
    assert [m for m in PAPER_ORDER if f"{m} seed 42: already done" in log] == [m for m in PAPER_ORDER if m != "cnn"]
    resumed_rows = json.loads((out / "table.json").read_text(encoding="utf-8"))["rows"]
    same_columns = ["model", *(heading for heading, _ in METRIC_COLUMNS), "train s", "samples/s"]
    assert [[row[c] for c in same_columns] for row in resumed_rows] == [[row[c] for c in same_columns] for row in rows]


def test_aggregate_takes_mean_and_sample_std_over_seeds() -> None:
    def summary(seed: int, micro_f1: float) -> dict:
        metrics = {"micro_precision": 0.5, "micro_recall": 0.5, "micro_f1": micro_f1, "macro_f1": 0.2,
                   "band_f1": {"head": 0.6, "torso": 0.3, "tail": None}}
        return {"model": "cnn", "seed": seed, "test": metrics, "test_tuned": metrics, "train_seconds": 2.0,
                "samples_per_second": 10.0, "peak_memory_mib": 5.0, "device": "cpu", "memory_method": "rss"}

    (row,) = aggregate([summary(1, 0.4), summary(2, 0.6), summary(3, 0.8)], ["altxml", "cnn"])
    assert row["seeds"] == 3 and row["Mi-F1"]["mean"] == pytest.approx(0.6)
    assert row["Mi-F1"]["std"] == pytest.approx(0.2)  # sample std of 0.4, 0.6, 0.8
    assert str(row["Tail-F1"]["mean"]) == "nan"  # no tail labels: shown as missing, not as 0


def test_model_lists_and_user_errors(small_release: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert parse_models("all") == PAPER_ORDER
    assert parse_models("altxml, br") == ("altxml", "br")
    with pytest.raises(ConfigError, match="unknown model\\(s\\) bert"):
        parse_models("cnn,bert")

    assert main(["bench", "--release", str(tmp_path / "none"), "--out", str(tmp_path / "b")]) == 2
    assert "none: no such release folder" in capsys.readouterr().err
    assert main(["bench", "--release", str(small_release), "--models", "cnn,bert", "--out", str(tmp_path / "b")]) == 2
    assert "unknown model(s) bert" in capsys.readouterr().err
    assert main(["fit", "--release", str(small_release), "--model", "bert", "--out", str(tmp_path / "r")]) == 2
    assert "unknown model 'bert'" in capsys.readouterr().err

    no_test = tmp_path / "no-test"
    shutil.copytree(small_release, no_test)
    (no_test / parquet_path("test")).unlink()
    assert main(["fit", "--release", str(no_test), "--model", "cnn", "--out", str(tmp_path / "r")]) == 2
    assert "has no 'test' split" in capsys.readouterr().err
    assert main(["fit", "--release", str(small_release), "--model", "cnn", "--hidden", "8", "--out", str(tmp_path / "r")]) == 2
    assert "--hidden does not apply to model 'cnn'" in capsys.readouterr().err
    assert main(["bench", "--release", str(small_release), "--models", "br", "--baseline-hparam", "C=2",
                 "--baseline-hparam", "embed_dim=8", "--out", str(tmp_path / "b")]) == 2
    assert "baseline 'br' has no parameter(s) embed_dim; it accepts C" in capsys.readouterr().err


def test_baseline_parameters_reach_every_baseline_run_of_a_bench(small_release: Path, tmp_path: Path) -> None:
    config = BenchConfig(release=str(small_release), out=str(tmp_path / "b"), models=("br", "cnn"),
                         baseline_hparams={"C": 0.5, "min_df": 2})
    config.validate()
    assert run_config(config, "br", 43).hparams == {"C": 0.5, "min_df": 2}
    assert run_config(config, "cnn", 43).hparams == {}


@pytest.mark.parametrize("command", [[], ["fit"], ["predict"], ["bench"]])
def test_help_everywhere(command: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: imcm-train" in capsys.readouterr().out


def test_cli_fit_from_a_toml_file_then_resume(small_release: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    toml = tmp_path / "cnn.toml"
    toml.write_text(f'[train]\nrelease = "{small_release}"\nmodel = "cnn"\nepochs = 1\nmax_length = 64\n'
                    '[train.hparams]\nembed_dim = 16\nnum_filters = 8\n', encoding="utf-8")
    run = tmp_path / "run"
    assert main(["fit", "--config", str(toml), "--out", str(run), "--batch-size", "32", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == 1
    saved = json.loads((run / "config.json").read_text(encoding="utf-8"))
    assert (saved["batch_size"], saved["max_length"], saved["hparams"]) == (32, 64, {"embed_dim": 16, "num_filters": 8})
    assert main(["fit", "--out", str(run), "--resume", "--epochs", "2", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == 2
    assert main(["fit", "--out", str(run), "--resume", "--epochs", "3", "--lr", "0.5"]) == 2
    assert "cannot resume with different settings (lr: run has 0.001, asked 0.5)" in capsys.readouterr().err


def test_bench_refuses_recorded_runs_of_other_settings_and_names_its_threshold(
    small_release: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "bench"
    base = ["bench", "--release", str(small_release), "--models", "br,cnn", "--seeds", "1", "--out", str(out),
            "--max-vocab", "2000", "--batch-size", "32", "--embed-dim", "16", "--hparam", "num_filters=8",
            "--no-progress"]
    assert main([*base, "--epochs", "1", "--max-length", "none", "--threshold", "0.3"]) == 0
    capsys.readouterr()
    assert "at threshold 0.3;" in (out / "table.md").read_text(encoding="utf-8")
    for model in ("br", "cnn"):
        config = json.loads((out / "runs" / model / "seed42" / "config.json").read_text(encoding="utf-8"))
        assert config["max_length"] is None and config["threshold"] == 0.3

    # the same settings (0 spells "keep all" as "none" does): nothing is retrained
    assert main([*base, "--epochs", "1", "--max-length", "0", "--threshold", "0.3"]) == 0
    assert "br seed 42: already done" in capsys.readouterr().out
    assert main([*base, "--epochs", "1", "--max-length", "none"]) == 2
    assert "br seed 42 was trained with other settings (threshold: run has 0.3, asked 0.5)" in capsys.readouterr().err
    assert main([*base, "--epochs", "2", "--max-length", "none", "--threshold", "0.3"]) == 2
    err = capsys.readouterr().err
    assert "cnn seed 42 was trained with other settings (epochs: run has 1, asked 2)" in err
    assert len(err.splitlines()) == 1


def test_hidden_applies_to_the_model_from_the_toml_file_or_the_resumed_run(tmp_path: Path) -> None:
    from imcm_train.cli import _fit_config, build_parser

    toml = tmp_path / "sgm.toml"
    toml.write_text('[train]\nrelease = "rel"\nmodel = "sgm"\n', encoding="utf-8")
    config = _fit_config(build_parser().parse_args(["fit", "--config", str(toml), "--hidden", "64"]))
    assert (config.model, config.hparams) == ("sgm", {"encoder_hidden": 64})
    config.validate()

    run = tmp_path / "run"
    run.mkdir()
    saved = TrainConfig(release="rel", out=str(run), model="cnn_rnn", hparams={"decoder_hidden": 32})
    (run / "config.json").write_text(json.dumps(saved.to_dict()), encoding="utf-8")
    resumed = _fit_config(build_parser().parse_args(["fit", "--out", str(run), "--resume", "--hidden", "32"]))
    assert (resumed.model, resumed.hparams, resumed.resume) == ("cnn_rnn", {"decoder_hidden": 32}, True)


def test_cli_max_length_none_keeps_all_tokens_and_baseline_options_are_one_line_errors(
    small_release: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from imcm_train.cli import _fit_config, build_parser

    for spelling in ("none", "NONE", "0"):
        args = build_parser().parse_args(["fit", "--release", "rel", "--max-length", spelling])
        assert _fit_config(args).max_length is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fit", "--max-length", "all"])
    capsys.readouterr()

    assert main(["fit", "--release", str(small_release), "--model", "br", "--embed-dim", "16",
                 "--out", str(tmp_path / "br")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imcm-train: error: baseline 'br' has no hyper-parameter(s) embed_dim; it accepts C, ")
    assert len(err.splitlines()) == 1
    assert main(["fit", "--release", str(small_release), "--model", "cc", "--hparam", "depth=3",
                 "--out", str(tmp_path / "cc")]) == 2
    assert "baseline 'cc' has no hyper-parameter(s) depth" in capsys.readouterr().err
