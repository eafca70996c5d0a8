"""The paper's Table 2 for one release: every model × several seeds, mean ± std.

Layout of the output folder:

    runs/<model>/seed<seed>/     each run's folder (see `imcm_train.train`)
    results/<model>-seed<seed>.json   the run's summary, written when the run has finished
    table.md, table.csv, table.json   the aggregated table (json also keeps every run's summary)

A finished (model, seed) is never trained again, and a run interrupted mid-way resumes from its
`last.pt`, so an interrupted bench is simply started again with the same arguments. Started again
with other settings (epochs, lr, max_length, hyper-parameters, ...), it stops with an error naming
them rather than mix runs of different settings in one table; use another --out.

Peak memory is what `train.PeakMemory` measures for each run: on CPU the peak resident set size of the
process (VmHWM reset through /proc/self/clear_refs at the start of the run), on CUDA
`torch.cuda.max_memory_allocated`; the table's "memory" column names the method.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imcm_train.train import (
    BASELINE_NAMES,
    HIDDEN_SIZE_HPARAMS,
    ConfigError,
    TrainConfig,
    TrainingError,
    baseline_hparams,
    differing_settings,
    fit,
    model_hparams,
    model_names,
    write_json,
)

PAPER_ORDER = ("br", "cc", "lp", "cnn", "cnn_rnn", "sgm", "sgm_ge", "rnn_att", "altxml")
# (column heading, summary key path); test metrics at the fixed threshold unless "tuned".
METRIC_COLUMNS = (
    ("Mi-P", ("test", "micro_precision")),
    ("Mi-R", ("test", "micro_recall")),
    ("Mi-F1", ("test", "micro_f1")),
    ("Mi-F1 (tuned)", ("test_tuned", "micro_f1")),
    ("Ma-F1", ("test", "macro_f1")),
    ("Tail-F1", ("test", "band_f1", "tail")),
)
COST_COLUMNS = (
    ("train s", ("train_seconds",)),
    ("samples/s", ("samples_per_second",)),
    ("peak MiB", ("peak_memory_mib",)),
)


@dataclass
class BenchConfig:
    release: str
    out: str = "bench"
    models: tuple[str, ...] = PAPER_ORDER
    seeds: int = 3
    first_seed: int = 42
    epochs: int = 20
    train_options: dict[str, Any] = field(default_factory=dict)  # other TrainConfig fields, for neural models
    baseline_hparams: dict[str, Any] = field(default_factory=dict)  # keyword arguments of br/cc/lp

    def validate(self) -> None:
        if self.seeds < 1 or self.epochs < 1:
            raise ConfigError(f"--seeds and --epochs must be at least 1, got {self.seeds} and {self.epochs}")
        parse_models(",".join(self.models))
        reserved = sorted({"release", "out", "model", "seed", "epochs", "resume"} & set(self.train_options))
        if reserved:
            raise ConfigError(f"bench sets {', '.join(reserved)} itself; they cannot be train options")
        neural = [model for model in self.models if model not in BASELINE_NAMES]
        accepted = {name for model in neural for name in model_hparams(model)}
        unused = sorted(set(self.train_options.get("hparams", {})) - accepted)
        if set(unused) <= set(HIDDEN_SIZE_HPARAMS) and accepted & set(HIDDEN_SIZE_HPARAMS):
            unused = []  # --hidden sets every model's hidden width under its own name
        if unused:
            raise ConfigError(f"no selected model has the hyper-parameter(s) {', '.join(unused)}")
        for model in (model for model in self.models if model in BASELINE_NAMES):
            unknown = sorted(set(self.baseline_hparams) - set(baseline_hparams(model)))
            if unknown:
                raise ConfigError(f"baseline {model!r} has no parameter(s) {', '.join(unknown)}; "
                                  f"it accepts {', '.join(baseline_hparams(model))}")

    @property
    def seed_list(self) -> list[int]:
        return [self.first_seed + offset for offset in range(self.seeds)]


def parse_models(spec: str) -> tuple[str, ...]:
    """'all' → the paper's order; otherwise a comma list of known model names (order kept)."""
    if spec.strip() == "all":
        return PAPER_ORDER
    names = tuple(name.strip() for name in spec.split(",") if name.strip())
    known = model_names()
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise ConfigError(f"unknown model(s) {', '.join(unknown) or '(none given)'}; choose from all, {', '.join(known)}")
    return names


def run_config(config: BenchConfig, model: str, seed: int) -> TrainConfig:
    run_dir = Path(config.out) / "runs" / model / f"seed{seed}"
    options = {"release": config.release, "out": str(run_dir), "model": model, "seed": seed, "epochs": config.epochs}
    options.update({key: value for key, value in config.train_options.items() if key != "hparams"})
    if model in BASELINE_NAMES:
        options["hparams"] = dict(config.baseline_hparams)
    else:
        accepted = model_hparams(model)
        options["hparams"] = {k: v for k, v in config.train_options.get("hparams", {}).items() if k in accepted}
    resume = (run_dir / "last.pt").exists() or (run_dir / "summary.json").exists()
    return TrainConfig.from_dict({**options, "resume": resume}, origin="bench")


def run_bench(config: BenchConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train what has not been trained yet, then write and return the aggregated table."""
    config.validate()
    out = Path(config.out)
    (out / "results").mkdir(parents=True, exist_ok=True)
    summaries = []
    for model in config.models:
        for seed in config.seed_list:
            result_file = out / "results" / f"{model}-seed{seed}.json"
            if result_file.exists():
                _check_finished_run(config, model, seed, result_file)
                log(f"{model} seed {seed}: already done ({result_file})")
            else:
                log(f"{model} seed {seed}: training")
                write_json(result_file, fit(run_config(config, model, seed)))
            summaries.append(json.loads(result_file.read_text(encoding="utf-8")))
    rows = aggregate(summaries, config.models)
    threshold = config.train_options.get("threshold", TrainConfig.threshold)
    table = {"release": config.release, "epochs": config.epochs, "seeds": config.seed_list,
             "config": dataclasses.asdict(config), "rows": rows, "runs": summaries}
    write_json(out / "table.json", table)
    (out / "table.md").write_text(format_markdown(rows, threshold), encoding="utf-8")
    (out / "table.csv").write_text(format_csv(rows), encoding="utf-8")
    log(format_markdown(rows, threshold))
    return table


def _check_finished_run(config: BenchConfig, model: str, seed: int, result_file: Path) -> None:
    """A recorded result counts only if its run had the settings asked for now."""
    wanted = run_config(config, model, seed)
    saved_file = Path(wanted.out) / "config.json"
    if not saved_file.is_file():
        raise TrainingError(f"{result_file}: recorded, but its run's {saved_file} is missing: cannot tell its "
                            f"settings; delete the result to retrain it or use another --out")
    saved = json.loads(saved_file.read_text(encoding="utf-8"))
    # `out` is where the run was found; a baseline trains in one go, whatever --epochs says
    ignored = {"out", "resume", "progress", "device", "threads"} | ({"epochs"} if model in BASELINE_NAMES else set())
    details = differing_settings(saved, wanted.to_dict(), frozenset(ignored))
    if details:
        raise TrainingError(f"{result_file}: {model} seed {seed} was trained with other settings ({details}); "
                            f"use another --out, or the same settings")


def _lookup(summary: dict[str, Any], path: Sequence[str]) -> float:
    value: Any = summary
    for key in path:
        value = value[key]
    return math.nan if value is None else float(value)


def aggregate(summaries: Sequence[dict[str, Any]], order: Sequence[str]) -> list[dict[str, Any]]:
    """One row per model: mean and std (sample std, 0 for one seed) of every column over its seeds."""
    rows = []
    for model in order:
        runs = [summary for summary in summaries if summary["model"] == model]
        if not runs:
            continue
        row: dict[str, Any] = {"model": model, "seeds": len(runs)}
        for heading, path in METRIC_COLUMNS + COST_COLUMNS:
            values = np.array([_lookup(run, path) for run in runs])
            row[heading] = {"mean": float(np.mean(values)),
                            "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}
        row["device"] = runs[0]["device"]
        row["memory"] = runs[0]["memory_method"]
        rows.append(row)
    return rows


def format_markdown(rows: Sequence[dict[str, Any]], threshold: float = TrainConfig.threshold) -> str:
    headings = ["Model", "seeds"] + [h for h, _ in METRIC_COLUMNS + COST_COLUMNS] + ["device", "memory"]
    lines = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    for row in rows:
        metrics = [f"{100 * row[h]['mean']:.2f} ± {100 * row[h]['std']:.2f}" for h, _ in METRIC_COLUMNS]
        costs = [f"{row[h]['mean']:.1f} ± {row[h]['std']:.1f}" for h, _ in COST_COLUMNS]
        lines.append("| " + " | ".join([row["model"], str(row["seeds"]), *metrics, *costs, row["device"],
                                        row["memory"]]) + " |")
    return ("\n".join(lines) + "\n\nMetrics in %, test split; Mi-P/Mi-R/Mi-F1/Ma-F1/Tail-F1 at threshold "
            f"{threshold:g}; Mi-F1 (tuned) at the threshold tuned on validation.\n")


def format_csv(rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    columns = [h for h, _ in METRIC_COLUMNS + COST_COLUMNS]
    writer = csv.writer(buffer)
    writer.writerow(["model", "seeds", *[f"{h} {part}" for h in columns for part in ("mean", "std")], "device",
                     "memory"])
    for row in rows:
        values = [row[h][part] for h in columns for part in ("mean", "std")]
        writer.writerow([row["model"], row["seeds"], *values, row["device"], row["memory"]])
    return buffer.getvalue()
