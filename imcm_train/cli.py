"""`imcm-train fit | predict | bench`: train a model on a release, label new text, run Table 2.

Options come from flags, or from a TOML file (`--config run.toml`, table `[train]`) with flags winning;
every run saves its full configuration as `config.json`. User errors (missing release or split,
unknown model, bad option) print one line naming the problem and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imcm_build.release import ReleaseError
from imcm_train.train import (
    BASELINE_NAMES,
    HIDDEN_SIZE_HPARAMS,
    ConfigError,
    TrainConfig,
    TrainingError,
    model_hparams,
    model_names,
    read_toml_table,
)

EXIT_USER_ERROR = 2
# Flags that map onto TrainConfig fields (argparse dest == field name); all default to None = "not given".
TRAIN_FLAGS = (
    ("--batch-size", int, "documents per batch (default 64)"),
    ("--lr", float, "AdamW learning rate (default 0.001)"),
    ("--weight-decay", float, "AdamW weight decay (default 0.01)"),
    ("--grad-clip", float, "max gradient L2 norm (default 10)"),
    ("--threshold", float, "decision threshold (default 0.5)"),
    ("--max-vocab", int, "vocabulary size: most frequent training tokens (default 60000)"),
    ("--pool-batches", int, "length-sorting pool size, in batches (default 50)"),
    ("--eval-batch-size", int, "documents per evaluation batch (default 256)"),
    ("--device", str, "auto (default: CUDA when present), cpu, cuda or cuda:N"),
    ("--threads", int, "torch CPU threads (default: torch's, one per core)"),
    ("--precision", str, "auto (default: bf16 on CUDA if supported, else fp16; fp32 on CPU), fp32, bf16, fp16"),
)
HPARAM_FLAGS = (
    ("--embed-dim", ("embed_dim",), "word embedding size (model default when omitted)"),
    ("--hidden", HIDDEN_SIZE_HPARAMS, "hidden width of the RNN encoders/decoders (model default when omitted)"),
)


def _max_length(value: str) -> int:
    """0 for "none": None would read as "not given" (TrainConfig turns 0 into None, keep all)."""
    if value.strip().lower() == "none":
        return 0
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of tokens, 0 or 'none', got {value!r}") from None


def _hparam(value: str) -> tuple[str, Any]:
    key, separator, raw = value.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    try:
        return key.replace("-", "_"), json.loads(raw)
    except json.JSONDecodeError:
        return key.replace("-", "_"), raw


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training options (defaults: the paper's settings)")
    for flag, kind, help_text in TRAIN_FLAGS:
        group.add_argument(flag, type=kind, default=None, help=help_text)
    group.add_argument("--max-length", type=_max_length, default=None, help="tokens kept per document (default 500; 0 or 'none' keeps all)")
    for flag, _, help_text in HPARAM_FLAGS:
        group.add_argument(flag, type=int, default=None, help=help_text)
    group.add_argument("--hparam", type=_hparam, action="append", default=[], metavar="KEY=VALUE",
                       help="any model keyword argument, VALUE parsed as JSON (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imcm-train", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="{fit,predict,bench}")

    fit = commands.add_parser("fit", help="train one model (neural or br/cc/lp) into a run folder")
    fit.add_argument("--release", help="release folder (with data/*.parquet and labels.txt)")
    fit.add_argument("--out", help="run folder to create (or to continue with --resume)")
    fit.add_argument("--model", help="altxml (default), rnn_att, cnn, cnn_rnn, sgm, sgm_ge, br, cc or lp")
    fit.add_argument("--config", type=Path, help="TOML file with a [train] table; flags override it")
    fit.add_argument("--seed", type=int, default=None, help="random seed (default 42)")
    fit.add_argument("--epochs", type=int, default=None, help="epochs (default 20)")
    fit.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    fit.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="tqdm progress bars (default: only on a terminal)")
    _add_train_options(fit)

    predict = commands.add_parser("predict", help="label texts with a trained run")
    predict.add_argument("--run", required=True, type=Path, help="run folder written by `fit`")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", action="append", help="a text to label (repeatable)")
    source.add_argument("--file", type=Path, help="UTF-8 file, one text per line")
    predict.add_argument("--threshold", default=None,
                         help="'tuned' (tuned on validation), or a number (default: the run's --threshold)")
    predict.add_argument("--format", choices=("jsonl", "table"), default="jsonl", help="output format (default jsonl)")
    predict.add_argument("--top-k", type=int, default=5, help="also list the K best labels (default 5)")

    bench = commands.add_parser("bench", help="Table 2: every model × seeds on one release")
    bench.add_argument("--release", required=True, help="release folder")
    bench.add_argument("--out", required=True, help="bench folder (re-run to resume)")
    bench.add_argument("--models", default="all", help="'all' (paper order) or a comma list (default all)")
    bench.add_argument("--seeds", type=int, default=3, help="seeds per model (default 3)")
    bench.add_argument("--first-seed", type=int, default=42, help="seeds are first-seed, first-seed+1, ... (default 42)")
    bench.add_argument("--epochs", type=int, default=20, help="epochs per neural model (default 20)")
    bench.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="tqdm progress bars")
    bench.add_argument("--baseline-hparam", type=_hparam, action="append", default=[], metavar="KEY=VALUE",
                       help="a scikit-learn parameter of BR/CC/LP (C, max_features, min_df, n_jobs; repeatable)")
    _add_train_options(bench)
    return parser


def _train_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides = {flag[2:].replace("-", "_"): getattr(args, flag[2:].replace("-", "_")) for flag, _, _ in TRAIN_FLAGS}
    overrides["max_length"] = args.max_length
    overrides["progress"] = args.progress
    hparams = {}
    for flag, names, _ in HPARAM_FLAGS:
        value = getattr(args, flag[2:].replace("-", "_"))
        hparams.update({name: value for name in names if value is not None})
    hparams.update(dict(args.hparam))
    overrides["hparams"] = hparams or None
    return {key: value for key, value in overrides.items() if value is not None}


def _fit_config(args: argparse.Namespace) -> TrainConfig:
    overrides = _train_overrides(args)
    if args.hidden is not None:
        overrides["hparams"] = _hidden_for_model(overrides["hparams"], _effective_model(args))
    for name in ("release", "out", "model", "seed", "epochs"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.resume:
        if args.out is None:
            raise ConfigError("--resume needs --out: the run folder to continue")
        return TrainConfig.from_run(args.out, **{k: v for k, v in overrides.items() if k != "out"})
    if args.config is not None:
        if not args.config.is_file():
            raise ConfigError(f"{args.config}: no such config file")
        return TrainConfig.from_toml(args.config, **overrides)
    return TrainConfig.from_dict(overrides, origin="command line")


def _effective_model(args: argparse.Namespace) -> str:
    """The model the run will train: --model, else the resumed run's, else the --config file's, else the default."""
    if args.model is not None:
        return args.model
    if args.resume and args.out is not None:
        saved = Path(args.out) / "config.json"
        if saved.is_file():
            return json.loads(saved.read_text(encoding="utf-8")).get("model", TrainConfig.model)
    elif args.config is not None and args.config.is_file():
        return read_toml_table(args.config).get("model", TrainConfig.model)
    return TrainConfig.model


def _hidden_for_model(hparams: dict[str, Any], model: str) -> dict[str, Any]:
    """Keep only the hidden-width names (set by --hidden) that `model` has."""
    accepted = model_hparams(model) if model in model_names() and model not in BASELINE_NAMES else {}
    kept = {key: value for key, value in hparams.items() if key not in HIDDEN_SIZE_HPARAMS or key in accepted}
    if not set(kept) & set(HIDDEN_SIZE_HPARAMS) and model in model_names():
        raise ConfigError(f"--hidden does not apply to model {model!r}")
    return kept


def _run_fit(args: argparse.Namespace) -> int:
    from imcm_train.train import fit

    summary = fit(_fit_config(args))
    if summary:
        print(json.dumps(summary, ensure_ascii=False, indent=1))
    return 0


def _run_predict(args: argparse.Namespace) -> int:
    from imcm_train.predict import Predictor, format_json_lines, format_table, read_texts

    texts = args.text if args.text else read_texts(args.file)
    predictions = Predictor(args.run).predict(texts, threshold=args.threshold, top_k=args.top_k)
    print(format_table(predictions) if args.format == "table" else format_json_lines(predictions))
    return 0


def _run_bench(args: argparse.Namespace) -> int:
    from imcm_train.bench import BenchConfig, parse_models, run_bench

    options = _train_overrides(args)
    config = BenchConfig(
        release=args.release, out=args.out, models=parse_models(args.models), seeds=args.seeds,
        first_seed=args.first_seed, epochs=args.epochs, train_options=options,
        baseline_hparams=dict(args.baseline_hparam),
    )
    run_bench(config, log=lambda message: print(message, flush=True))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from imcm_train.predict import PredictError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not Path(getattr(args, "release", None) or ".").exists():
        return _fail(f"{args.release}: no such release folder")
    runners = {"fit": _run_fit, "predict": _run_predict, "bench": _run_bench}
    try:
        return runners[args.command](args)
    except (ReleaseError, ConfigError, TrainingError, PredictError) as error:
        return _fail(str(error))


def _fail(message: str) -> int:
    print(f"imcm-train: error: {message}", file=sys.stderr)
    return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
