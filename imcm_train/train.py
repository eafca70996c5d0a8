"""One trainer for every model: neural models epoch by epoch, scikit-learn baselines in one fit.

A run folder (`TrainConfig.out`) ends up holding:

    config.json          the full TrainConfig of the run (reproduces it)
    metrics.jsonl        one line per epoch: train loss, validation metrics, seconds, samples/s
    best.pt / last.pt    best (validation micro-F1 at the fixed threshold, ties broken by the
                         micro-F1 at the tuned threshold) and latest checkpoint
    vocab.json, labels.txt
    tokenizer.json       how the release's tokens were made, for prediction (`imcm_train.tokenization`)
    test_metrics.json    test metrics at the fixed threshold and at the threshold tuned on validation
    summary.json         what the benchmark table needs: times, speed, memory, device, metrics
    training_curve.png
    model.pkl            (baselines only, instead of the .pt files)

Device and precision: CUDA is used when present. With `precision="auto"` CUDA runs under
`torch.autocast` in bfloat16 when the GPU supports it (no loss scaling needed, same exponent range as
fp32) and in float16 with `torch.amp.GradScaler("cuda")` otherwise; CPU runs in float32, which keeps
CPU runs bit-for-bit reproducible. Several GPUs (or CPU processes): launch with `torchrun
--nproc_per_node N -m imcm_train.cli fit ...`; the process group comes from the environment (nccl on
CUDA, gloo on CPU), every rank trains on a disjoint shard under DistributedDataParallel, and rank 0
alone evaluates and writes.

Resuming: `last.pt` holds model, optimizer, scaler, every rank's RNG states, the epoch and the best
result; it is written atomically each epoch, so `resume=True` continues an interrupted run and ends
with exactly the weights and metrics of an uninterrupted one (on CPU, same world size).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import pickle
import random
import re
import resource
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist
from torch import nn
from torch.distributed.algorithms.join import Join, Joinable, JoinHook
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from imcm_build.config import read_toml_table as toml_table
from imcm_build.release import LABELS_FILE
from imcm_train.data import (
    DEFAULT_MAX_LENGTH,
    DEFAULT_MAX_VOCAB,
    DEFAULT_POOL_BATCHES,
    EncodedSplit,
    LengthBucketSampler,
    ReleaseData,
    Vocabulary,
    load_release,
    make_loader,
)
from imcm_train.metrics import evaluate, to_indicator, tune_threshold
from imcm_train.tokenization import release_tokenizer, save_tokenizer

BASELINE_NAMES = ("br", "cc", "lp")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# The hidden widths of the models, under each model's own name (set together by `--hidden`).
HIDDEN_SIZE_HPARAMS = ("hidden_size", "encoder_hidden", "decoder_hidden")
# Fields a resumed run may change; any other difference means it is not the same run.
RESUMABLE_CHANGES = frozenset({"epochs", "resume", "progress", "device", "threads"})


class TrainingError(RuntimeError):
    """A run that cannot continue (non-finite loss, a run folder in the way, a bad resume)."""


class ConfigError(ValueError):
    """An invalid or unknown training option; the message names the option (and the file)."""


@dataclass
class TrainConfig:
    """Everything a run depends on; defaults are the paper's settings."""

    release: str = ""
    out: str = "runs/altxml"
    model: str = "altxml"
    seed: int = 42
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3  # AdamW
    weight_decay: float = 0.01
    grad_clip: float = 10.0  # max gradient L2 norm
    threshold: float = 0.5
    max_vocab: int = DEFAULT_MAX_VOCAB
    max_length: int | None = DEFAULT_MAX_LENGTH  # tokens kept per document; None (or 0, "none") keeps all
    pool_batches: int = DEFAULT_POOL_BATCHES  # length-sorting pool, in batches
    eval_batch_size: int = 256
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int | None = None  # torch CPU threads; None keeps torch's default (one per core)
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    hparams: dict[str, Any] = field(default_factory=dict)  # model keyword arguments (embed_dim, ...)
    resume: bool = False
    progress: bool | None = None  # None: show tqdm only on an interactive terminal

    def __post_init__(self) -> None:
        # TOML has no null and flags drop None as "not given": 0 and "none" spell "keep all tokens" there
        if self.max_length == 0 or (isinstance(self.max_length, str) and self.max_length.lower() == "none"):
            self.max_length = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "config") -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{origin}: unknown training option(s): {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Read `[train]` (or the top level) of a TOML file; `overrides` that are not None win."""
        data = read_toml_table(path)
        overrides = {key: value for key, value in overrides.items() if value is not None}
        if "hparams" in overrides:  # flags add to (and win over) the file's hyper-parameters
            overrides["hparams"] = {**data.get("hparams", {}), **overrides["hparams"]}
        data.update(overrides)
        return cls.from_dict(data, origin=str(path))

    @classmethod
    def from_run(cls, run_dir: str | Path, **overrides: Any) -> TrainConfig:
        """The saved config of a run, to resume it; only RESUMABLE_CHANGES may be overridden."""
        path = Path(run_dir) / "config.json"
        if not path.is_file():
            raise TrainingError(f"{path}: missing: {run_dir} is not a run folder, nothing to resume")
        saved = cls.from_dict(json.loads(path.read_text(encoding="utf-8")), origin=str(path))
        changes = {key: value for key, value in overrides.items() if value is not None}
        _check_same_run(saved.to_dict(), dataclasses.replace(saved, **changes).to_dict(), str(path))
        return dataclasses.replace(saved, **changes, resume=True)

    def validate(self) -> None:
        if not self.release:
            raise ConfigError("no release given (--release DIR)")
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "max_vocab": self.max_vocab,
                    "pool_batches": self.pool_batches, "eval_batch_size": self.eval_batch_size}
        bad = [f"{name}={value}" for name, value in positive.items() if value < 1]
        for name in ("max_length", "threads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                bad.append(f"{name}={value!r}" + (" (a positive integer, or 0/'none' to keep all tokens)"
                                                  if name == "max_length" else ""))
        if not self.lr > 0 or self.weight_decay < 0 or not self.grad_clip > 0:
            bad.append(f"lr={self.lr}, weight_decay={self.weight_decay}, grad_clip={self.grad_clip}")
        if not 0 < self.threshold < 1:
            bad.append(f"threshold={self.threshold} (must be in (0, 1))")
        if self.precision not in PRECISIONS:
            bad.append(f"precision={self.precision!r} (one of {', '.join(PRECISIONS)})")
        if bad:
            raise ConfigError(f"invalid training option(s): {'; '.join(bad)}")
        known_models = model_names()
        if self.model not in known_models:
            raise ConfigError(f"unknown model {self.model!r}; choose one of {', '.join(known_models)}")
        accepted = baseline_hparams(self.model) if self.model in BASELINE_NAMES else model_hparams(self.model)
        unknown = sorted(set(self.hparams) - set(accepted))
        if unknown:
            kind = "baseline" if self.model in BASELINE_NAMES else "model"
            raise ConfigError(f"{kind} {self.model!r} has no hyper-parameter(s) {', '.join(unknown)}; "
                              f"it accepts {', '.join(accepted)}")


def read_toml_table(path: str | Path) -> dict[str, Any]:
    """The `[train]` table (or the top level) of a TOML file; a ConfigError names a bad file."""
    try:
        return toml_table(path, "train")
    except ValueError as error:
        raise ConfigError(str(error)) from None


def model_names() -> tuple[str, ...]:
    from imcm_train.models import MODEL_NAMES

    return BASELINE_NAMES + tuple(MODEL_NAMES)


def baseline_hparams(name: str) -> tuple[str, ...]:
    """The scikit-learn parameters baseline `name` (br, cc, lp) accepts."""
    from imcm_train.baselines import BASELINES

    return tuple(BASELINES[name]._get_param_names())


def model_hparams(name: str) -> dict[str, Any]:
    """The keyword arguments neural model `name` accepts, with their defaults."""
    from imcm_train.models import default_hparams

    return default_hparams(name)


def differing_settings(
    saved: dict[str, Any], wanted: dict[str, Any], allowed: frozenset[str] = RESUMABLE_CHANGES
) -> str:
    """"key: run has A, asked B" for every setting outside `allowed` that differs ("" when none)."""
    # through TrainConfig, so that 0 and "none" compare equal to None (max_length)
    saved, wanted = TrainConfig.from_dict(saved).to_dict(), TrainConfig.from_dict(wanted).to_dict()
    differing = sorted(key for key in saved if key not in allowed and not _same_setting(key, saved[key], wanted.get(key)))
    return ", ".join(f"{key}: run has {saved[key]!r}, asked {wanted.get(key)!r}" for key in differing)


def _same_setting(key: str, saved: Any, wanted: Any) -> bool:  # noqa: ANN401 - any setting's value
    if key in ("release", "out") and isinstance(saved, str) and isinstance(wanted, str):
        return Path(saved).resolve() == Path(wanted).resolve()  # ./run and run are one folder
    return saved == wanted


def _check_same_run(saved: dict[str, Any], wanted: dict[str, Any], origin: str) -> None:
    details = differing_settings(saved, wanted)
    if details:
        raise TrainingError(f"{origin}: cannot resume with different settings ({details})")


# --- distributed context -------------------------------------------------------------------------


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch_dist.barrier()


def _choose_device(requested: str, local_rank: int) -> torch.device:
    if requested == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {requested!r} asked for, but CUDA is not available")
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{local_rank}")
    return device


@contextlib.contextmanager
def distributed_context(requested_device: str) -> Iterator[Distributed]:
    """Join the process group described by torchrun's environment (WORLD_SIZE > 1), else run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _choose_device(requested_device, local_rank)
    if world_size <= 1:
        yield Distributed(device=device)
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    already = torch_dist.is_initialized()
    if not already:
        torch_dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        yield Distributed(torch_dist.get_rank(), torch_dist.get_world_size(), device)
    finally:
        if not already:
            torch_dist.destroy_process_group()


# --- precision, memory, RNG ----------------------------------------------------------------------


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain float32."""
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


class PeakMemory:
    """Peak memory of a stretch of work, in MiB.

    CUDA: `torch.cuda.max_memory_allocated` after a reset ("cuda_max_allocated"). CPU on Linux: the peak
    resident set size of the process (VmHWM), reset to the current size through /proc/self/clear_refs
    when the stretch starts ("rss_peak"). Elsewhere: the process's lifetime peak `ru_maxrss` ("ru_maxrss").
    The CPU figures are the whole process's resident memory (data, model, Python): a delta would read 0
    whenever the work reuses memory an earlier stage of the same process had freed.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        if device.type == "cuda":
            self.method = "cuda_max_allocated"
            torch.cuda.reset_peak_memory_stats(device)
        elif _reset_peak_rss():
            self.method = "rss_peak"
        else:
            self.method = "ru_maxrss"

    def peak_mib(self) -> float:
        if self.method == "cuda_max_allocated":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if self.method == "rss_peak":
            return _proc_status_kib("VmHWM") / 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return _proc_status_kib("VmHWM") > 0
    except OSError:
        return False


def _proc_status_kib(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        match = re.search(rf"^{key}:\s+(\d+) kB", handle.read(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    """Restore `_rng_state()`; the torch setters need CPU uint8 tensors, wherever the checkpoint put them."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(_cpu_bytes(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_cpu_bytes(cuda_state) for cuda_state in state["cuda"]])


def _cpu_bytes(rng_state: torch.Tensor) -> torch.Tensor:
    return rng_state.to(device="cpu", dtype=torch.uint8)


# --- files ---------------------------------------------------------------------------------------


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, then rename, so a crash never leaves a half-written file."""
    temp = path.with_name(path.name + ".tmp")
    torch.save(obj, temp)
    os.replace(temp, path)


def write_json(path: Path, data: Any) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(temp, path)


def read_metrics_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _prepare_run_folder(config: TrainConfig, release: ReleaseData) -> Path:
    run_dir = Path(config.out)
    has_run = (run_dir / "last.pt").exists() or (run_dir / "summary.json").exists()
    if config.resume:
        if not (run_dir / "last.pt").exists() and config.model not in BASELINE_NAMES:
            raise TrainingError(f"{run_dir / 'last.pt'}: missing: nothing to resume in {run_dir}")
    elif has_run:
        raise TrainingError(f"{run_dir}: already holds a run; pass --resume to continue it or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", config.to_dict())
    shutil.copyfile(release.path / LABELS_FILE, run_dir / LABELS_FILE)
    save_tokenizer(release_tokenizer(release.path), run_dir)
    return run_dir


# --- evaluation ----------------------------------------------------------------------------------


@torch.no_grad()
def predict_scores(
    model: nn.Module, dataset: EncodedSplit, batch_size: int, device: torch.device, dtype: torch.dtype | None = None
) -> np.ndarray:
    """Scores [N, L] in the dataset's order (batches are length-sorted, then put back in place)."""
    was_training = model.training
    model.eval()
    scores = np.zeros((len(dataset), dataset.num_labels), dtype=np.float32)
    sampler = LengthBucketSampler(dataset.lengths, batch_size, shuffle=False)
    for batch in make_loader(dataset, sampler):
        with _autocast(device, dtype):
            batch_scores = model.predict_scores(batch.tokens.to(device), batch.lengths)
        scores[batch.indices.numpy()] = batch_scores.float().cpu().numpy()
    model.train(was_training)
    return scores


def evaluate_with_tuning(
    y_val: np.ndarray, val_scores: np.ndarray, threshold: float, label_frequency: np.ndarray, tune: bool
) -> dict[str, Any]:
    """Validation metrics at `threshold` and at the tuned threshold (the same one when not tuning)."""
    at_fixed = evaluate(y_val, val_scores, threshold, label_frequency)
    tuned_threshold = tune_threshold(y_val, val_scores) if tune else threshold
    at_tuned = evaluate(y_val, val_scores, tuned_threshold, label_frequency)
    return {"fixed": at_fixed, "tuned": at_tuned, "tuned_threshold": tuned_threshold}


def _brief(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("micro_precision", "micro_recall", "micro_f1", "macro_f1", "example_f1", "p@1", "band_f1", "threshold")
    return {key: metrics[key] for key in keys}


# --- the trainer ---------------------------------------------------------------------------------


class _LossModule(nn.Module):
    """DDP only synchronises gradients of computations run through `forward`, so route `loss` there."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.model.loss(tokens, lengths, targets)


@dataclass
class _Datasets:
    vocabulary: Vocabulary
    train: EncodedSplit
    validation: EncodedSplit
    test: EncodedSplit
    y_validation: np.ndarray
    y_test: np.ndarray


def _encode_release(release: ReleaseData, config: TrainConfig, run_dir: Path) -> _Datasets:
    vocabulary_file = run_dir / "vocab.json"
    if config.resume and vocabulary_file.exists():
        vocabulary = Vocabulary.load(vocabulary_file)
    else:
        vocabulary = Vocabulary.build(release.split("train").tokens, config.max_vocab)

    def encoded(name: str) -> EncodedSplit:
        return EncodedSplit.from_split(release.split(name), vocabulary, release.num_labels, config.max_length)

    return _Datasets(
        vocabulary,
        encoded("train"),
        encoded("validation"),
        encoded("test"),
        to_indicator(release.split("validation").labels, release.num_labels, f"{release.path} validation"),
        to_indicator(release.split("test").labels, release.num_labels, f"{release.path} test"),
    )


class Trainer:
    """Trains one neural model on one release (single process or one DDP rank)."""

    def __init__(
        self, config: TrainConfig, release: ReleaseData, run_dir: Path, dist: Distributed, memory: PeakMemory
    ) -> None:
        from imcm_train.models import build_model

        self.config, self.release, self.run_dir, self.dist, self.memory = config, release, run_dir, dist, memory
        self.data = _encode_release(release, config, run_dir)
        if dist.is_main:
            self.data.vocabulary.save(run_dir / "vocab.json")
        seed_everything(config.seed)
        self.model = build_model(config.model, len(self.data.vocabulary), release.num_labels, **config.hparams)
        self.model.to(dist.device)
        self.dtype = autocast_dtype(config.precision, dist.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.loss_module: nn.Module = _LossModule(self.model)
        if dist.enabled:
            device_ids = [dist.device.index] if dist.device.type == "cuda" else None
            self.loss_module = DistributedDataParallel(self.loss_module, device_ids=device_ids)
        self.sampler = LengthBucketSampler(
            self.data.train.lengths, config.batch_size, shuffle=True, seed=config.seed,
            pool_batches=config.pool_batches, num_replicas=dist.world_size, rank=dist.rank,
        )
        self.start_epoch = 0
        self.best: dict[str, Any] = {"epoch": 0, "micro_f1": -1.0}
        seed_everything(config.seed + dist.rank)
        if config.resume:
            self._load_last()

    # checkpoints

    def _load_last(self) -> None:
        # on the CPU: load_state_dict moves model and optimizer state to the parameters' device, and the
        # RNG states must stay CPU tensors
        checkpoint = torch.load(self.run_dir / "last.pt", map_location="cpu", weights_only=False)
        _check_same_run(checkpoint["config"], self.config.to_dict(), str(self.run_dir / "last.pt"))
        if len(checkpoint["rng"]) != self.dist.world_size:
            raise TrainingError(
                f"{self.run_dir / 'last.pt'}: written by {len(checkpoint['rng'])} process(es), resumed with "
                f"{self.dist.world_size}; resume with the same number of processes"
            )
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        _set_rng_state(checkpoint["rng"][self.dist.rank])
        self.start_epoch, self.best = checkpoint["epoch"], checkpoint["best"]
        if self.dist.is_main:
            kept = [line for line in read_metrics_lines(self.run_dir / "metrics.jsonl") if line["epoch"] <= self.start_epoch]
            _write_lines(self.run_dir / "metrics.jsonl", kept)

    def _save_last(self, epoch: int) -> None:
        rng_states = [None] * self.dist.world_size
        if self.dist.enabled:
            torch_dist.all_gather_object(rng_states, _rng_state())
        else:
            rng_states = [_rng_state()]
        if self.dist.is_main:
            checkpoint = {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": rng_states,
                "epoch": epoch,
                "best": self.best,
                "config": self.config.to_dict(),
            }
            atomic_save(checkpoint, self.run_dir / "last.pt")

    # training

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        self.sampler.set_epoch(epoch)
        self.model.train()
        loss_sum, documents, step = 0.0, 0, 0
        started = time.perf_counter()
        join: contextlib.AbstractContextManager = contextlib.nullcontext()
        if self.dist.enabled:
            self.finite_check = _FiniteLossCheck(self.config.model, self.dist, epoch, self.loss_module.process_group)
            join = Join([self.loss_module, self.finite_check])
        batches = tqdm(
            make_loader(self.data.train, self.sampler), desc=f"epoch {epoch}/{self.config.epochs}",
            disable=not self._show_progress(), leave=False, unit="batch",
        )
        with join:
            for step, batch in enumerate(batches, start=1):
                loss = self._train_step(batch, epoch, step)
                loss_sum += loss * len(batch)
                documents += len(batch)
                batches.set_postfix(loss=f"{loss:.4f}", docs_per_s=f"{documents / (time.perf_counter() - started):.0f}")
        loss_sum, documents = self._sum_over_ranks(loss_sum, documents)
        seconds = time.perf_counter() - started
        return {"train_loss": loss_sum / documents, "train_seconds": seconds,
                "samples_per_second": documents / seconds, "train_documents": documents}

    def _train_step(self, batch: Any, epoch: int, step: int) -> float:
        device = self.dist.device
        with _autocast(device, self.dtype):
            loss = self.loss_module(batch.tokens.to(device), batch.lengths, batch.targets.to(device))
        self.optimizer.zero_grad(set_to_none=True)
        if self.dist.enabled:
            # every rank must learn of a non-finite loss, or the others wait in the next all-reduce:
            # backward first (its gradient all-reduce), then one all-reduce of a flag, before any update
            self.scaler.scale(loss).backward()
            self.finite_check.check(loss, step)
        else:
            if not torch.isfinite(loss):
                raise TrainingError(_non_finite_message(self.config.model, loss.item(), epoch, step, self.dist.rank))
            self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.item()

    def _sum_over_ranks(self, loss_sum: float, documents: int) -> tuple[float, int]:
        if not self.dist.enabled:
            return loss_sum, documents
        totals = torch.tensor([loss_sum, float(documents)], dtype=torch.float64, device=self.dist.device)
        torch_dist.all_reduce(totals)
        return totals[0].item(), int(totals[1].item())

    def _show_progress(self) -> bool:
        wanted = sys.stderr.isatty() if self.config.progress is None else self.config.progress
        return wanted and self.dist.is_main

    def _validate(self) -> dict[str, Any]:
        scores = predict_scores(self.model, self.data.validation, self.config.eval_batch_size, self.dist.device, self.dtype)
        tune = getattr(self.model, "uses_threshold", True)
        return evaluate_with_tuning(self.data.y_validation, scores, self.config.threshold, self.release.label_frequency, tune)

    def run(self) -> dict[str, Any]:
        """Train the remaining epochs; rank 0 keeps best.pt/last.pt/metrics.jsonl up to date."""
        for epoch in range(self.start_epoch + 1, self.config.epochs + 1):
            train_stats = self._train_epoch(epoch)
            if self.dist.is_main:
                self._finish_epoch(epoch, train_stats)
            self._share_best()
            self._save_last(epoch)
            self.dist.barrier()
        return self.best

    def _finish_epoch(self, epoch: int, train_stats: dict[str, float]) -> None:
        started = time.perf_counter()
        validation = self._validate()
        micro_f1 = validation["fixed"]["micro_f1"]
        # ties (typically several epochs at micro-F1 0.0 when a 0.5 threshold predicts nothing on a
        # low-density label set) go to the better micro-F1 at the validation-tuned threshold
        candidate = (micro_f1, validation["tuned"]["micro_f1"])
        if candidate > (self.best["micro_f1"], self.best.get("tuned_micro_f1", -1.0)):
            self.best = {"epoch": epoch, "micro_f1": micro_f1, "tuned_micro_f1": validation["tuned"]["micro_f1"],
                         "tuned_threshold": validation["tuned_threshold"]}
            atomic_save({"model": self.model.state_dict(), "epoch": epoch, "best": self.best,
                         "config": self.config.to_dict()}, self.run_dir / "best.pt")
        line = {"epoch": epoch, **train_stats, "validation_seconds": time.perf_counter() - started,
                "validation": _brief(validation["fixed"]), "validation_tuned": _brief(validation["tuned"]),
                "best_epoch": self.best["epoch"], "peak_memory_mib": self.memory.peak_mib()}
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        if self._show_progress():
            tqdm.write(
                f"epoch {epoch}: loss {train_stats['train_loss']:.4f}, val micro-F1 {micro_f1:.4f} "
                f"(tuned {validation['tuned']['micro_f1']:.4f}), {train_stats['samples_per_second']:.0f} docs/s",
                file=sys.stderr,
            )

    def _share_best(self) -> None:
        if self.dist.enabled:
            holder = [self.best]
            torch_dist.broadcast_object_list(holder, src=0)
            self.best = holder[0]

    def test(self) -> dict[str, Any]:
        """Test metrics of the best checkpoint at the fixed and at the validation-tuned threshold."""
        best = torch.load(self.run_dir / "best.pt", map_location=self.dist.device, weights_only=False)
        self.model.load_state_dict(best["model"])
        validation = self._validate()
        scores = predict_scores(self.model, self.data.test, self.config.eval_batch_size, self.dist.device, self.dtype)
        frequency = self.release.label_frequency
        return {
            "best_epoch": best["epoch"],
            "tuned_threshold": validation["tuned_threshold"],
            "at_threshold": evaluate(self.data.y_test, scores, self.config.threshold, frequency),
            "at_tuned_threshold": evaluate(self.data.y_test, scores, validation["tuned_threshold"], frequency),
            "validation_at_threshold": validation["fixed"],
            "validation_at_tuned_threshold": validation["tuned"],
        }


def _non_finite_message(model: str, loss: float | None, epoch: int, step: int | None, rank: int) -> str:
    where = f"at epoch {epoch}, step {step} (rank {rank})" if step is not None else f"at epoch {epoch}"
    what = f"loss is {loss}" if loss is not None else "loss is not finite on another rank"
    return f"{model}: {what} {where}; stopping. Try a lower --lr or --precision fp32."


class _FiniteLossHook(JoinHook):
    def __init__(self, check: _FiniteLossCheck) -> None:
        self.check_owner = check

    def main_hook(self) -> None:
        self.check_owner.shadow()


class _FiniteLossCheck(Joinable):
    """A per-step all-reduce of "this rank's loss is not finite", joined like DDP for uneven batch counts.

    A rank out of batches shadows the all-reduce (after DDP's own hook, the order the active ranks use:
    backward, then this check), so it stops with the others too.
    """

    def __init__(self, model: str, dist: Distributed, epoch: int, process_group: Any) -> None:
        super().__init__()
        self.model, self.dist, self.epoch, self.process_group = model, dist, epoch, process_group

    def join_hook(self, **kwargs: Any) -> JoinHook:
        return _FiniteLossHook(self)

    @property
    def join_device(self) -> torch.device:
        return self.dist.device

    @property
    def join_process_group(self) -> Any:
        return self.process_group

    def check(self, loss: torch.Tensor, step: int) -> None:
        Join.notify_join_context(self)
        local_bad = ~torch.isfinite(loss.detach().float())
        flag = local_bad.to(torch.float32).reshape(1)
        torch_dist.all_reduce(flag, group=self.process_group)
        if flag.item() > 0:
            value = loss.item() if local_bad.item() else None
            raise TrainingError(_non_finite_message(self.model, value, self.epoch, step, self.dist.rank))

    def shadow(self) -> None:
        flag = torch.zeros(1, dtype=torch.float32, device=self.dist.device)
        torch_dist.all_reduce(flag, group=self.process_group)
        if flag.item() > 0:
            raise TrainingError(_non_finite_message(self.model, None, self.epoch, None, self.dist.rank))


def _write_lines(path: Path, lines: list[dict[str, Any]]) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    os.replace(temp, path)


# --- baselines -----------------------------------------------------------------------------------


def _fit_baseline(config: TrainConfig, release: ReleaseData, run_dir: Path, memory: PeakMemory) -> dict[str, Any]:
    from imcm_train.baselines import BASELINES

    num_labels = release.num_labels
    y = {name: to_indicator(release.split(name).labels, num_labels, f"{release.path} {name}") for name in
         ("train", "validation", "test")}
    x = {name: release.split(name).joined_tokens() for name in ("train", "validation", "test")}
    estimator = BASELINES[config.model](**{"random_state": config.seed, **config.hparams})
    started = time.perf_counter()
    estimator.fit(x["train"], y["train"])
    seconds = time.perf_counter() - started
    with open(run_dir / "model.pkl.tmp", "wb") as handle:
        pickle.dump(estimator, handle)
    os.replace(run_dir / "model.pkl.tmp", run_dir / "model.pkl")
    validation = evaluate_with_tuning(y["validation"], estimator.predict_scores(x["validation"]),
                                      config.threshold, release.label_frequency, tune=True)
    scores = estimator.predict_scores(x["test"])
    documents = len(x["train"])
    line = {"epoch": 1, "train_loss": None, "train_seconds": seconds, "samples_per_second": documents / seconds,
            "train_documents": documents, "validation": _brief(validation["fixed"]),
            "validation_tuned": _brief(validation["tuned"]), "best_epoch": 1, "peak_memory_mib": memory.peak_mib()}
    _write_lines(run_dir / "metrics.jsonl", [line])
    return {
        "best_epoch": 1,
        "tuned_threshold": validation["tuned_threshold"],
        "at_threshold": evaluate(y["test"], scores, config.threshold, release.label_frequency),
        "at_tuned_threshold": evaluate(y["test"], scores, validation["tuned_threshold"], release.label_frequency),
        "validation_at_threshold": validation["fixed"],
        "validation_at_tuned_threshold": validation["tuned"],
    }


# --- entry point ---------------------------------------------------------------------------------


def fit(config: TrainConfig) -> dict[str, Any]:
    """Train `config.model` on `config.release` into the run folder `config.out`; return the summary.

    The summary (also `summary.json`) holds the test metrics at the fixed and at the tuned threshold,
    training seconds, samples/s, peak memory and the device. Other ranks of a distributed run return
    an empty dict.
    """
    config.validate()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    with distributed_context(config.device) as dist:
        release = load_release(config.release)
        run_dir = _prepare_run_folder(config, release) if dist.is_main else Path(config.out)
        dist.barrier()
        memory = PeakMemory(dist.device)
        if config.model in BASELINE_NAMES:
            if dist.enabled:
                raise TrainingError(f"baseline {config.model!r} trains in one process; run it without torchrun")
            test_metrics = _fit_baseline(config, release, run_dir, memory)
        else:
            trainer = Trainer(config, release, run_dir, dist, memory)
            trainer.run()
            if not dist.is_main:
                return {}
            test_metrics = trainer.test()
        return _write_results(config, run_dir, test_metrics, memory, dist)


def _write_results(
    config: TrainConfig, run_dir: Path, test_metrics: dict[str, Any], memory: PeakMemory, dist: Distributed
) -> dict[str, Any]:
    write_json(run_dir / "test_metrics.json", test_metrics)
    history = read_metrics_lines(run_dir / "metrics.jsonl")
    train_seconds = sum(line["train_seconds"] for line in history)
    documents = sum(line["train_documents"] for line in history)
    summary = {
        "model": config.model,
        "seed": config.seed,
        "epochs": len(history),
        "best_epoch": test_metrics["best_epoch"],
        "tuned_threshold": test_metrics["tuned_threshold"],
        "test": _brief(test_metrics["at_threshold"]),
        "test_tuned": _brief(test_metrics["at_tuned_threshold"]),
        "train_seconds": train_seconds,
        "samples_per_second": documents / train_seconds if train_seconds > 0 else math.nan,
        # A resumed run peaks in one of its processes: the epochs record theirs.
        "peak_memory_mib": max([memory.peak_mib()] + [line.get("peak_memory_mib", 0.0) for line in history]),
        "memory_method": memory.method,
        "device": _device_name(dist.device),
        "world_size": dist.world_size,
        "precision": str(autocast_dtype(config.precision, dist.device) or "float32").replace("torch.", ""),
    }
    write_json(run_dir / "summary.json", summary)
    if config.model not in BASELINE_NAMES:
        plot_training_curve(history, run_dir / "training_curve.png", title=f"{config.model} (seed {config.seed})")
    return summary


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} torch threads)"


def plot_training_curve(history: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [line["epoch"] for line in history]
    figure, loss_axis = plt.subplots(figsize=(6, 4))
    loss_axis.plot(epochs, [line["train_loss"] for line in history], "o-", color="tab:blue", label="train loss")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("train loss", color="tab:blue")
    f1_axis = loss_axis.twinx()
    f1_axis.plot(epochs, [line["validation"]["micro_f1"] for line in history], "s-", color="tab:red",
                 label="val micro-F1")
    f1_axis.plot(epochs, [line["validation_tuned"]["micro_f1"] for line in history], "s--", color="tab:orange",
                 label="val micro-F1 (tuned)")
    f1_axis.set_ylabel("validation micro-F1", color="tab:red")
    f1_axis.legend(loc="lower right")
    loss_axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
