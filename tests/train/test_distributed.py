"""Two CPU processes with gloo, set up the way torchrun sets them up (RANK, WORLD_SIZE, ... in the env)."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from imcm_build.release import read_split
from imcm_train import data
from imcm_train.train import TrainConfig, fit, read_metrics_lines
from tests.train.conftest import TINY_HPARAMS, TINY_TRAIN_OPTIONS

WORLD_SIZE = 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _record_training_batches(log_dir: Path, rank: int) -> None:
    """Make every rank log the training batches its sampler hands out, per epoch."""
    real_iter = data.LengthBucketSampler.__iter__

    def logging_iter(self: data.LengthBucketSampler):  # noqa: ANN202 - generator, as the original
        batches = list(real_iter(self))
        if self.shuffle:
            (log_dir / f"rank{rank}-epoch{self.epoch}.json").write_text(json.dumps(batches))
        yield from batches

    data.LengthBucketSampler.__iter__ = logging_iter


def _worker(rank: int, port: int, config: dict, log_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(WORLD_SIZE),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    _record_training_batches(Path(log_dir), rank)
    summary = fit(TrainConfig(**config))
    Path(log_dir, f"rank{rank}-summary.json").write_text(json.dumps(summary))


def test_two_gloo_processes_train_on_disjoint_shards_and_rank0_writes(small_release: Path, tmp_path: Path) -> None:
    out, log_dir = tmp_path / "run", tmp_path / "log"
    log_dir.mkdir()
    config = {"release": str(small_release), "out": str(out), "model": "cnn", "epochs": 2,
              **TINY_TRAIN_OPTIONS, "batch_size": 16, "hparams": TINY_HPARAMS["cnn"]}
    mp.spawn(_worker, args=(free_port(), config, str(log_dir)), nprocs=WORLD_SIZE, join=True)

    n_train = len(read_split(small_release, "train").ids)
    for epoch in (1, 2):
        shards = [
            [index for batch in json.loads((log_dir / f"rank{rank}-epoch{epoch}.json").read_text()) for index in batch]
            for rank in range(WORLD_SIZE)
        ]
        assert not set(shards[0]) & set(shards[1])
        assert sorted(shards[0] + shards[1]) == list(range(n_train))
        assert abs(len(shards[0]) - len(shards[1])) <= 1

    assert json.loads((log_dir / "rank1-summary.json").read_text()) == {}
    summary = json.loads((log_dir / "rank0-summary.json").read_text())
    assert summary["world_size"] == WORLD_SIZE and summary["epochs"] == 2
    history = read_metrics_lines(out / "metrics.jsonl")
    assert [line["train_documents"] for line in history] == [n_train, n_train]
    checkpoint = torch.load(out / "last.pt", weights_only=False)
    assert checkpoint["epoch"] == 2 and len(checkpoint["rng"]) == WORLD_SIZE
    for name in ("best.pt", "test_metrics.json", "summary.json", "vocab.json", "training_curve.png"):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.tmp"))


def _nan_worker(rank: int, port: int, config: dict, log_dir: str, nan_step: int) -> None:
    """Rank 0 gets only 2 batches an epoch (it joins early); rank 1's loss turns NaN at step `nan_step`."""
    from imcm_train.models.cnn import KimCNN
    from imcm_train.train import TrainingError

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(WORLD_SIZE),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    real_iter, real_loss = data.LengthBucketSampler.__iter__, KimCNN.loss
    calls = {"n": 0}

    def short_iter(self: data.LengthBucketSampler):  # noqa: ANN202 - generator, as the original
        batches = list(real_iter(self))
        yield from (batches[:2] if self.shuffle and rank == 0 else batches)

    def loss(self: KimCNN, *args: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        value = real_loss(self, *args)
        return value * float("nan") if rank == 1 and calls["n"] == nan_step else value

    data.LengthBucketSampler.__iter__, KimCNN.loss = short_iter, loss
    try:
        fit(TrainConfig(**config))
        outcome = "finished"
    except TrainingError as error:
        outcome = str(error)
    Path(log_dir, f"rank{rank}.txt").write_text(outcome)


@pytest.mark.parametrize("nan_step", [2, 4], ids=["both-ranks-active", "other-rank-joined"])
def test_a_nan_loss_on_one_rank_stops_every_rank(small_release: Path, tmp_path: Path, nan_step: int) -> None:
    """Without a collective check the healthy rank waits in an all-reduce forever (here: until the timeout)."""
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    config = {"release": str(small_release), "out": str(tmp_path / "run"), "model": "cnn", "epochs": 1,
              **TINY_TRAIN_OPTIONS, "batch_size": 16, "hparams": TINY_HPARAMS["cnn"]}
    context = mp.spawn(_nan_worker, args=(free_port(), config, str(log_dir), nan_step), nprocs=WORLD_SIZE, join=False)
    deadline = time.monotonic() + 120
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("a rank hung after another rank's NaN loss")
    assert (log_dir / "rank1.txt").read_text() == (
        f"cnn: loss is nan at epoch 1, step {nan_step} (rank 1); stopping. Try a lower --lr or --precision fp32.")
    assert (log_dir / "rank0.txt").read_text().startswith("cnn: loss is not finite on another rank at epoch 1")
    assert not (tmp_path / "run" / "last.pt").exists()
