from __future__ import annotations

import json
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from imcm_train.models.cnn import KimCNN
from imcm_train.train import ConfigError, TrainConfig, TrainingError, fit, read_metrics_lines
from tests.train.conftest import TINY_HPARAMS, TINY_TRAIN_OPTIONS

TIMING_KEYS = {"train_seconds", "samples_per_second", "validation_seconds", "peak_memory_mib"}


def tiny_config(release: Path, out: Path, model: str = "altxml", **options: Any) -> TrainConfig:
    settings = {**TINY_TRAIN_OPTIONS, "hparams": TINY_HPARAMS[model], **options}
    return TrainConfig(release=str(release), out=str(out), model=model, **settings)


def without_timings(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: value for key, value in line.items() if key not in TIMING_KEYS} for line in lines]


def assert_same_weights(first: Path, second: Path) -> None:
    a = torch.load(first, weights_only=False)["model"]
    b = torch.load(second, weights_only=False)["model"]
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs between {first} and {second}"


def test_loss_decreases_and_the_run_folder_is_complete(small_release: Path, tmp_path: Path) -> None:
    summary = fit(tiny_config(small_release, tmp_path / "run", epochs=4, lr=0.005))
    run = tmp_path / "run"
    history = read_metrics_lines(run / "metrics.jsonl")
    assert [line["epoch"] for line in history] == [1, 2, 3, 4]
    losses = [line["train_loss"] for line in history]
    assert losses[-1] < 0.8 * losses[0], losses
    for name in ("config.json", "best.pt", "last.pt", "vocab.json", "labels.txt", "test_metrics.json",
                 "summary.json", "training_curve.png"):
        assert (run / name).is_file(), name
    assert (run / "labels.txt").read_text(encoding="utf-8") == (small_release / "labels.txt").read_text(encoding="utf-8")
    saved = json.loads((run / "config.json").read_text(encoding="utf-8"))
    assert saved["lr"] == 0.005 and saved["weight_decay"] == 0.01 and saved["grad_clip"] == 10.0
    test_metrics = json.loads((run / "test_metrics.json").read_text(encoding="utf-8"))
    assert test_metrics["at_threshold"]["threshold"] == 0.5
    assert test_metrics["at_tuned_threshold"]["threshold"] == test_metrics["tuned_threshold"]
    assert test_metrics["validation_at_tuned_threshold"]["micro_f1"] >= test_metrics["validation_at_threshold"]["micro_f1"]
    best = max(history, key=lambda line: (line["validation"]["micro_f1"], line["validation_tuned"]["micro_f1"]))
    assert summary["best_epoch"] == test_metrics["best_epoch"] == best["epoch"]
    assert summary["device"].startswith("cpu") and summary["peak_memory_mib"] > 0
    assert summary["train_seconds"] > 0 and summary["samples_per_second"] > 0


def test_best_epoch_ties_at_the_fixed_threshold_go_to_the_better_tuned_micro_f1(
    small_release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imcm_train import train

    # a low-density label set: nothing reaches 0.5 in any epoch, only the tuned threshold tells epochs apart
    tuned_by_epoch = iter([0.10, 0.30, 0.20])
    original = train.Trainer._validate

    def validate(self: train.Trainer) -> dict[str, Any]:
        result = original(self)
        result["fixed"]["micro_f1"] = 0.0
        result["tuned"]["micro_f1"] = next(tuned_by_epoch, 0.0)  # later calls: the final test evaluation
        return result

    monkeypatch.setattr(train.Trainer, "_validate", validate)
    summary = fit(tiny_config(small_release, tmp_path / "run", epochs=3))
    assert summary["best_epoch"] == 2


def test_resume_gives_the_same_result_as_an_uninterrupted_run(small_release: Path, tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    fit(tiny_config(small_release, straight, epochs=2))
    interrupted = tmp_path / "interrupted"
    fit(tiny_config(small_release, interrupted, epochs=1))
    fit(TrainConfig.from_run(interrupted, epochs=2))

    assert_same_weights(straight / "last.pt", interrupted / "last.pt")
    assert_same_weights(straight / "best.pt", interrupted / "best.pt")
    assert without_timings(read_metrics_lines(straight / "metrics.jsonl")) == without_timings(
        read_metrics_lines(interrupted / "metrics.jsonl")
    )
    assert json.loads((straight / "test_metrics.json").read_text()) == json.loads(
        (interrupted / "test_metrics.json").read_text()
    )


def test_two_runs_with_the_same_seed_are_identical_and_another_seed_differs(small_release: Path, tmp_path: Path) -> None:
    fit(tiny_config(small_release, tmp_path / "a", model="cnn", epochs=1))
    fit(tiny_config(small_release, tmp_path / "b", model="cnn", epochs=1))
    fit(tiny_config(small_release, tmp_path / "c", model="cnn", epochs=1, seed=7))
    assert_same_weights(tmp_path / "a" / "last.pt", tmp_path / "b" / "last.pt")
    with pytest.raises(AssertionError):
        assert_same_weights(tmp_path / "a" / "last.pt", tmp_path / "c" / "last.pt")


def test_nan_loss_stops_the_run_naming_epoch_and_step(
    small_release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_loss = KimCNN.loss
    calls = {"n": 0}

    def loss_that_turns_nan(self: KimCNN, tokens: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        loss = real_loss(self, tokens, lengths, targets)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(KimCNN, "loss", loss_that_turns_nan)
    with pytest.raises(TrainingError, match=r"cnn: loss is nan at epoch 1, step 3"):
        fit(tiny_config(small_release, tmp_path / "run", model="cnn", epochs=2))
    assert not (tmp_path / "run" / "last.pt").exists()


def test_an_existing_run_is_not_overwritten_and_resume_refuses_other_settings(small_release: Path, tmp_path: Path) -> None:
    fit(tiny_config(small_release, tmp_path / "run", model="cnn", epochs=1))
    with pytest.raises(TrainingError, match="already holds a run; pass --resume"):
        fit(tiny_config(small_release, tmp_path / "run", model="cnn", epochs=1))
    with pytest.raises(TrainingError, match=r"cannot resume with different settings \(lr: run has 0.001, asked 0.1\)"):
        TrainConfig.from_run(tmp_path / "run", epochs=2, lr=0.1)
    with pytest.raises(TrainingError, match="last.pt: missing: nothing to resume"):
        fit(tiny_config(small_release, tmp_path / "fresh", model="cnn", resume=True))
    # the same folders written another way are the same run
    same = TrainConfig.from_run(tmp_path / "run", epochs=2, out=f"{tmp_path}/./run/",
                                release=str(small_release / ".." / small_release.name))
    assert same.resume and same.epochs == 2


def test_config_from_toml_with_overrides_and_clear_errors(tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text('[train]\nrelease = "rel"\nmodel = "cnn"\nepochs = 3\n[train.hparams]\nnum_filters = 8\n')
    config = TrainConfig.from_toml(toml, epochs=5, lr=None)
    assert (config.model, config.epochs, config.lr, config.batch_size, config.hparams) == ("cnn", 5, 0.001, 64, {"num_filters": 8})
    config.validate()
    assert TrainConfig.from_toml(toml, hparams={"dropout": 0.1}).hparams == {"num_filters": 8, "dropout": 0.1}
    toml.write_text('[train]\nrelease = "rel"\nlearning_rate = 0.1\n')
    with pytest.raises(ConfigError, match=r"run.toml: unknown training option\(s\): learning_rate"):
        TrainConfig.from_toml(toml)
    with pytest.raises(ConfigError, match="unknown model 'bert'"):
        TrainConfig(release="rel", model="bert").validate()
    with pytest.raises(ConfigError, match="model 'cnn' has no hyper-parameter\\(s\\) hidden_size"):
        TrainConfig(release="rel", model="cnn", hparams={"hidden_size": 8}).validate()
    with pytest.raises(ConfigError, match="batch_size=0"):
        TrainConfig(release="rel", batch_size=0).validate()


def test_resume_loads_the_checkpoint_on_the_cpu_and_restores_every_rng_state(small_release: Path, tmp_path: Path) -> None:
    """A checkpoint resumed for a non-CPU device still restores model, optimizer and RNG states exactly.

    No GPU here, so the "meta" device stands in for CUDA: a checkpoint mapped onto it (as `_load_last`
    once mapped it onto `dist.device`) holds tensors `torch.set_rng_state` refuses and the CPU model
    cannot copy from. This proves the checkpoint is read onto the CPU and handed on from there; it
    cannot prove that `torch.cuda.set_rng_state_all` or the optimizer's move to a real GPU work.
    """
    from imcm_train import train
    from imcm_train.data import load_release

    run = tmp_path / "run"
    fit(tiny_config(small_release, run, model="cnn", epochs=1))
    saved = torch.load(run / "last.pt", weights_only=False)
    config = tiny_config(small_release, run, model="cnn", epochs=2)
    trainer = train.Trainer(config, load_release(small_release), run, train.Distributed(), train.PeakMemory(torch.device("cpu")))
    torch.manual_seed(123)  # an RNG state unlike the saved one
    trainer.dist = train.Distributed(device=torch.device("meta"))
    trainer._load_last()

    assert torch.equal(torch.get_rng_state(), saved["rng"][0]["torch"])
    assert random.getstate() == saved["rng"][0]["python"]
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), saved["rng"][0]["numpy"], strict=True))
    for name, value in trainer.model.state_dict().items():
        assert value.device.type == "cpu" and torch.equal(value, saved["model"][name]), name
    for state in trainer.optimizer.state.values():
        assert state["exp_avg"].device.type == "cpu"
    assert trainer.start_epoch == 1


def test_rng_states_of_another_dtype_or_device_are_restored() -> None:
    """`_set_rng_state` hands torch a CPU uint8 tensor whatever it got (here: an int64 copy)."""
    from imcm_train.train import _rng_state, _set_rng_state

    state = _rng_state()
    expected = torch.rand(3)
    _set_rng_state({**state, "torch": state["torch"].to(torch.int64)})
    assert torch.equal(torch.rand(3), expected)


def test_max_length_zero_or_none_keeps_all_tokens_from_python_toml_and_resume(small_release: Path, tmp_path: Path) -> None:
    assert TrainConfig(max_length=0).max_length is None
    assert TrainConfig(max_length="none").max_length is None
    assert TrainConfig(max_length=64).max_length == 64
    toml = tmp_path / "run.toml"
    toml.write_text('[train]\nrelease = "rel"\nmax_length = 0\n')
    assert TrainConfig.from_toml(toml).max_length is None
    toml.write_text('[train]\nrelease = "rel"\nmax_length = "none"\n')
    assert TrainConfig.from_toml(toml).max_length is None
    with pytest.raises(ConfigError, match=r"max_length='all'"):
        TrainConfig(release="rel", max_length="all").validate()
    with pytest.raises(ConfigError, match=r"max_length=-3"):
        TrainConfig(release="rel", max_length=-3).validate()

    run = tmp_path / "run"
    fit(tiny_config(small_release, run, model="cnn", epochs=1, max_length=0))
    assert json.loads((run / "config.json").read_text())["max_length"] is None
    resumed = TrainConfig.from_run(run, epochs=2, max_length=0)  # 0 and None are the same setting
    assert resumed.max_length is None
    with pytest.raises(TrainingError, match=r"max_length: run has None, asked 64"):
        TrainConfig.from_run(run, epochs=2, max_length=64)


def test_a_baseline_gets_the_run_seed_unless_hparams_set_random_state(small_release: Path, tmp_path: Path) -> None:
    def fitted_random_state(name: str, **options: Any) -> int:
        fit(TrainConfig(release=str(small_release), out=str(tmp_path / name), model="br", progress=False, **options))
        with open(tmp_path / name / "model.pkl", "rb") as handle:
            return pickle.load(handle).random_state

    assert fitted_random_state("seed7", seed=7) == 7
    assert fitted_random_state("fixed", seed=7, hparams={"random_state": 3, "C": 0.5}) == 3
    with pytest.raises(ConfigError, match=r"baseline 'br' has no hyper-parameter\(s\) embed_dim; it accepts C, "):
        TrainConfig(release="rel", model="br", hparams={"embed_dim": 16}).validate()
    with pytest.raises(ConfigError, match=r"baseline 'lp' has no hyper-parameter\(s\) bogus; .*temperature"):
        TrainConfig(release="rel", model="lp", hparams={"bogus": 1}).validate()
