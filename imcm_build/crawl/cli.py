"""`imcm-build crawl` and `imcm-build parse`.

    imcm-build crawl --out DIR [--base-url URL] [--delay S] [--jitter S] [--tags T ...] [--tags-file F]
                     [--ids-file F] [--max-books N] [--max-pages-per-tag N] [--user-agent UA]
                     [--cookie-file F] [--archive-max-mb N] [--timeout S] [--max-retries N]
                     [--backoff-base S] [--retry-after-max S] [--parse]
                     [--i-know-what-i-am-doing]
    imcm-build parse ARCHIVE_OR_DIR... --out FILE

Rerunning the same `crawl` command resumes it. The cookie (``--cookie-file`` or ``$IMCM_DOUBAN_COOKIE``) is
sent to Douban and written nowhere: not to the archive, the state, the report or the log.
Also runnable as ``python -m imcm_build.crawl.cli``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from imcm_build.crawl.crawler import (
    COOKIE_ENV,
    DEFAULT_BASE_URL,
    MIN_POLITE_DELAY,
    CrawlConfig,
    parse_archives,
    run_crawl,
)


def _add_crawl_parser(subparsers: argparse._SubParsersAction) -> None:
    defaults = CrawlConfig(out="")
    crawl = subparsers.add_parser(
        "crawl", help="crawl Douban book pages (or the local simulator) into a WARC archive; rerun to resume",
        description=f"Polite by default: one request at a time, {MIN_POLITE_DELAY:g} s + U(0, jitter) between "
        "requests, robots.txt honoured. Exit status 3 means Douban blocked the crawl (state saved; rerun "
        "later), 4 that some pages still failed after retries.",
    )
    crawl.add_argument("--out", required=True, help="crawl folder: archive/, state.sqlite3, crawl_report.json")
    crawl.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"site to crawl (default {DEFAULT_BASE_URL})")
    crawl.add_argument("--delay", type=float, default=defaults.delay,
                       help=f"seconds between requests (default and minimum {MIN_POLITE_DELAY:g}, any on loopback)")
    crawl.add_argument("--jitter", type=float, default=defaults.jitter, help="extra random delay U(0, S) (default 2)")
    crawl.add_argument("--tags", nargs="+", default=[], metavar="TAG", help="seed tags (their listing pages)")
    crawl.add_argument("--tags-file", help="seed tags, one per line")
    crawl.add_argument("--ids-file", help="subject ids (or subject URLs) to (re)crawl, one per line")
    crawl.add_argument("--max-books", type=int, help="stop queuing subject pages after this many")
    crawl.add_argument("--max-pages-per-tag", type=int, help="listing pages per tag (Douban serves at most 50)")
    crawl.add_argument("--user-agent", default=defaults.user_agent, help="User-Agent header (put your contact in it)")
    crawl.add_argument("--cookie-file", help=f"file holding a Cookie header value (else ${COOKIE_ENV}); never logged")
    crawl.add_argument("--archive-max-mb", type=float, default=defaults.archive_max_mb,
                       help="start a new WARC file after this size (default 100)")
    crawl.add_argument("--archive-compress-level", type=int, choices=range(10), metavar="0-9",
                       help="gzip level of the WARC files (default: 6 for a paced crawl, 1 below 1 s delay)")
    crawl.add_argument("--timeout", type=float, default=defaults.timeout, help="seconds per request (default 30)")
    crawl.add_argument("--max-retries", type=int, default=defaults.max_retries,
                       help="retries per page for timeouts, 429, 5xx, cut pages (default 5)")
    crawl.add_argument("--backoff-base", type=float, default=defaults.backoff_base,
                       help="first retry pause in seconds, doubled each retry (default 2)")
    crawl.add_argument("--retry-after-max", type=float, default=defaults.retry_after_max,
                       help="longest Retry-After wait honoured, in seconds (default 600; a longer one is logged)")
    crawl.add_argument("--parse", action="store_true", help="then parse the archive into OUT/records.jsonl")
    crawl.add_argument("--no-progress", dest="progress", action="store_false", help="no live progress bar")
    crawl.add_argument("--i-know-what-i-am-doing", action="store_true",
                       help=f"allow --delay below {MIN_POLITE_DELAY:g} s against a non-local host")
    crawl.set_defaults(func=cmd_crawl)


def _add_parse_parser(subparsers: argparse._SubParsersAction) -> None:
    parse = subparsers.add_parser(
        "parse", help="WARC archives (files or crawl folders) → records JSONL + FILE.report.json",
    )
    parse.add_argument("inputs", nargs="+", metavar="ARCHIVE_OR_DIR", help="WARC files, archive/ or crawl folders")
    parse.add_argument("--out", required=True, help="records JSONL to write (.gz allowed)")
    parse.set_defaults(func=cmd_parse)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``crawl`` and ``parse`` subcommands to an ``imcm-build`` argument parser."""
    _add_crawl_parser(subparsers)
    _add_parse_parser(subparsers)


def _configure_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)


def config_from_args(args: argparse.Namespace) -> CrawlConfig:
    names = [name for name in CrawlConfig.__dataclass_fields__ if hasattr(args, name)]
    return CrawlConfig(**{name: getattr(args, name) for name in names})


def cmd_crawl(args: argparse.Namespace) -> int:
    _configure_logging()
    report = run_crawl(config_from_args(args))
    print(report.summary())
    return report.exit_code


def cmd_parse(args: argparse.Namespace) -> int:
    _configure_logging()
    summary = parse_archives(args.inputs, args.out)
    data = summary.to_dict(brief=True)
    print(f"parsed {summary.responses} archived responses → {summary.records} records in {summary.out}")
    if data["n_errors"]:
        reasons = ", ".join(f"{reason} {n}" for reason, n in data["errors_by_reason"].items())
        print(f"  {data['n_errors']} subject pages rejected ({reasons}); see {summary.out}.report.json")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imcm-build")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ValueError as error:
        print(f"imcm-build {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
