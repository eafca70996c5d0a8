"""`imcm-build`: demo | build | import | stats | figures | crawl | parse | simulate."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from imcm_build.config import BuildConfig
from imcm_build.crawl import cli as crawl_cli
from imcm_build.simulator import cli as simulator_cli


class UserError(Exception):
    """An error the user can fix; printed without a traceback, exit status 2."""


def _add_build_options(parser: argparse.ArgumentParser) -> None:
    defaults = BuildConfig()
    group = parser.add_argument_group("build options (override the --config file)")
    group.add_argument("--config", help="TOML file with build options (a [build] table or top-level keys)")
    group.add_argument("--name", help=f"release name (default {defaults.name})")
    group.add_argument("--min-words", type=int, help=f"keep documents with at least this many words (default {defaults.min_words})")
    group.add_argument("--num-labels", type=int, help=f"K most frequent tags kept as labels (default {defaults.num_labels})")
    group.add_argument("--min-label-freq", type=int, help=f"minimum documents per label (default {defaults.min_label_freq})")
    group.add_argument("--split-ratios", type=float, nargs=3, metavar=("TRAIN", "VAL", "TEST"), help="default 0.8 0.1 0.1")
    group.add_argument("--seed", type=int, help=f"split seed (default {defaults.seed})")
    group.add_argument("--workers", type=int, help="tokenizer processes (0 = all cores)")
    group.add_argument("--to-simplified", action="store_true", default=None, help="convert traditional → simplified Chinese")
    group.add_argument("--no-near-dedup", dest="near_dedup", action="store_false", default=None,
                       help="only remove exact duplicates, not other editions")
    group.add_argument("--minhash-threshold", type=float, help=f"near-duplicate Jaccard threshold (default {defaults.minhash_threshold})")
    group.add_argument("--no-figures", dest="figures", action="store_false", default=None, help="skip the PNG figures")
    group.add_argument("--strict", action="store_true", default=None, help="abort on the first rejected record")


def config_from_args(args: argparse.Namespace, records: Sequence[str] | None) -> BuildConfig:
    """The build configuration: the --config file's options, overridden by every flag that was given
    (`records` None = --records not given, so the file's records are used)."""
    overrides = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(BuildConfig)
        if getattr(args, field.name, None) is not None
    }
    if records is not None:
        overrides["records"] = [str(path) for path in records]
    if getattr(args, "out", None):
        overrides["out"] = str(args.out)
    if overrides.get("split_ratios") is not None:
        overrides["split_ratios"] = tuple(overrides["split_ratios"])
    if args.config:
        return BuildConfig.from_toml(args.config, **overrides)
    return BuildConfig(**overrides)


def cmd_build(args: argparse.Namespace) -> int:
    from imcm_build.build import build_release
    from imcm_build.summary import print_release_summary

    config = config_from_args(args, args.records)
    if not config.records:
        raise UserError("no records given: use --records FILE ... or records = [...] in the --config file")
    timings: dict[str, float] = {}
    release = build_release(config, timings)
    print_release_summary(release)
    print("Seconds: " + ", ".join(f"{step} {seconds:.2f}" for step, seconds in timings.items()))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from imcm_build.demo import run_demo

    return run_demo(Path(args.out), n_books=args.books, seed=args.seed, via_crawl=not args.no_crawl)


def cmd_import(args: argparse.Namespace) -> int:
    from imcm_build.importers import import_release
    from imcm_build.summary import print_release_summary

    split_map = dict(args.split or [])
    options = {}
    if args.lowercase_labels:
        if args.kind != "aapd":
            raise UserError("--lowercase-labels applies to AAPD only (RCV1 codes are upper-case in every file)")
        options["lowercase_labels"] = True
    release = import_release(
        args.kind, [Path(p) for p in args.inputs], Path(args.out), split_map=split_map or None,
        label_map=Path(args.label_map) if args.label_map else None, seed=args.seed, figures=args.figures,
        **options,
    )
    print_release_summary(release)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from imcm_build.release import STATS_FILE
    from imcm_build.stats import format_table1, release_stats, write_stats

    stats = release_stats(Path(args.release))
    print(format_table1(stats))
    out = Path(args.out) if args.out else None
    if out is not None:
        write_stats(stats, out if out.suffix == ".json" else out / STATS_FILE)
        print(f"\nstatistics written to {out}")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from imcm_build.figures import write_figures
    from imcm_build.release import read_label_names
    from imcm_build.stats import release_stats

    release = Path(args.release)
    paths = write_figures(release_stats(release), read_label_names(release), Path(args.out))
    for path in paths:
        print(path)
    return 0


def split_assignment(text: str) -> tuple[str, str]:
    """Parse one `--split SPLIT=FILE` value."""
    split, separator, file = text.partition("=")
    if not separator or not split.strip() or not file.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not SPLIT=FILE (for example train=val.json)")
    return split.strip(), file.strip()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imcm-build",
        description="Rebuild the IMCM dataset: crawl Douban, parse, clean, tokenize, label, split, publish.",
        epilog="Errors print one line naming the file or record; set IMCM_DEBUG=1 for the traceback.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="build a small release end to end from a generated corpus (no network)")
    demo.add_argument("--out", default="imcm-demo", help="output folder (default ./imcm-demo)")
    demo.add_argument("--books", type=int, default=400, help="books in the generated demo corpus")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--no-crawl", action="store_true", help="skip the simulated crawl; build from the records directly")
    demo.set_defaults(func=cmd_demo)

    build = sub.add_parser("build", help="records JSONL (one or more files, .gz allowed) → a release folder")
    build.add_argument("--records", nargs="+", metavar="FILE", help="records JSONL files")
    build.add_argument("--out", required=True, help="release folder to write (replaced atomically)")
    _add_build_options(build)
    build.set_defaults(func=cmd_build)

    imp = sub.add_parser("import", help="AAPD / RCV1-v2 in their usual formats → a release of the same format")
    imp.add_argument("kind", choices=["aapd", "rcv1"])
    imp.add_argument("inputs", nargs="+", help="input files or folders (SGM text_/label_ pairs, JSON, JSON lines)")
    imp.add_argument("--out", required=True, help="release folder to write")
    imp.add_argument("--split", action="append", metavar="SPLIT=FILE", type=split_assignment,
                     help="assign a file to a split, e.g. --split train=val.json --split test=test.json")
    imp.add_argument("--label-map", help="label universe file (AAPD labels.json or RCV1 label meanings)")
    imp.add_argument("--lowercase-labels", action="store_true",
                     help="AAPD: lower-case every label (LR-GCN's cs.CV → cs.cv, as in blalalt's labels.json)")
    imp.add_argument("--seed", type=int, default=42, help="seed for carving validation out of train when absent")
    imp.add_argument("--no-figures", dest="figures", action="store_false", help="skip the PNG figures")
    imp.set_defaults(func=cmd_import)

    stats = sub.add_parser("stats", help="Table-1 statistics of a release (markdown; --out saves JSON)")
    stats.add_argument("release", help="release folder")
    stats.add_argument("--out", help="a .json file or a folder to write stats.json into")
    stats.set_defaults(func=cmd_stats)

    figures = sub.add_parser("figures", help="Figures 1–2 (label frequency/IR, labels per document) as PNG")
    figures.add_argument("release", help="release folder")
    figures.add_argument("--out", required=True,
                         help="folder to write into: the PNGs go to OUT/figures/, as in a release")
    figures.set_defaults(func=cmd_figures)

    crawl_cli.register(sub)
    simulator_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from imcm_build.records import RecordError
    from imcm_build.release import ReleaseError
    from imcm_build.report import BuildError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    # OSError: a file that cannot be opened or written (its message names the file)
    except (UserError, RecordError, ReleaseError, BuildError, ValueError, OSError) as error:
        if os.environ.get("IMCM_DEBUG"):
            raise
        print(f"imcm-build {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"imcm-build {args.command}: interrupted; no partial release was left behind", file=sys.stderr)
        return 130


def run() -> None:
    """The `imcm-build` command: `main`, then exit without the interpreter's final garbage collections,
    which walk every object datasets, scikit-learn and jieba created (~0.4 s) only to free a process
    that is ending anyway."""
    status = main()
    gc.freeze()
    sys.exit(status)


if __name__ == "__main__":
    run()
