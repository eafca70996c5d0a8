"""The crawler's own overhead per page, against the local simulator with zero delay.

In one run, over the same subject URLs and the same simulator: a bare `requests.Session().get(...).content`
loop, then the crawler (robots.txt, classification of every page, WARC archive with gzip, SQLite state,
fsync), alternated ``--repeats`` times so that a burst of load from other processes hits both sides. Prints
pages/s of both per round, and the median ratio crawler / bare (target >= 0.8).

``--server process`` (default) runs the simulator as its own process (``imcm-build simulate``), as Douban
is: the crawler's archive writer then overlaps the next request. ``--server thread`` runs it inside the
benchmark's process, where the server, the client and the writer share one GIL — a worst case that
measures the crawler's CPU cost per page rather than its throughput against a real server.

    python benchmarks/crawl_overhead.py [--records FILE] [--pages N] [--repeats N] [--server process|thread]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from imcm_build.crawl.crawler import CrawlConfig, run_crawl
from imcm_build.demo_corpus import generate_demo_records
from imcm_build.records import Record, write_records
from imcm_build.simulator import DoubanSimulator, load_simulator_records


@contextlib.contextmanager
def simulator_url(records: list[Record], server: str, scratch: Path) -> Iterator[str]:
    """The base URL of a simulator serving `records`, in this process (thread) or its own (process)."""
    if server == "thread":
        with DoubanSimulator(records) as simulator:
            yield simulator.base_url
        return
    records_file = scratch / "served.jsonl"
    write_records(records, records_file)
    process = subprocess.Popen([sys.executable, "-m", "imcm_build.cli", "simulate", "--records", str(records_file)],
                               stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().strip() if process.stdout else ""
        if not line.startswith("http://"):
            raise SystemExit(f"the simulator did not start (printed {line!r})")
        yield line
    finally:
        process.terminate()
        process.wait(timeout=30)


def bare_loop(base_url: str, ids: list[str]) -> float:
    session = requests.Session()
    started = time.perf_counter()
    for subject_id in ids:
        response = session.get(f"{base_url}/subject/{subject_id}/", timeout=30)
        response.raise_for_status()
    return time.perf_counter() - started


def crawler_run(base_url: str, ids: list[str], folder: Path) -> float:
    folder.mkdir(parents=True)
    ids_file = folder / "ids.txt"
    ids_file.write_text("\n".join(ids) + "\n", encoding="utf-8")
    config = CrawlConfig(out=str(folder / "crawl"), base_url=base_url, delay=0.0, jitter=0.0,
                         ids_file=str(ids_file), progress=False)
    started = time.perf_counter()
    report = run_crawl(config)
    elapsed = time.perf_counter() - started
    if report.fetched_this_run != len(ids):
        raise SystemExit(f"crawler fetched {report.fetched_this_run} of {len(ids)} pages: {report.status}")
    return elapsed


def ms_per_page(seconds: float, pages: int) -> str:
    return f"{pages / seconds:7.1f} pages/s ({1000 * seconds / pages:.2f} ms/page)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", help="records JSONL to serve (default: the generated demo corpus)")
    parser.add_argument("--pages", type=int, default=2000,
                        help="subject pages per side (default 2000: a crawl's ~0.1 s start-up is a fixed cost)")
    parser.add_argument("--repeats", type=int, default=7, help="rounds of bare loop + crawl (default 7)")
    parser.add_argument("--server", choices=("process", "thread"), default="process",
                        help="run the simulator in its own process (default) or in a thread of this one")
    args = parser.parse_args()
    records = load_simulator_records(args.records) if args.records else generate_demo_records(args.pages, seed=0)
    ids = [record.id for record in records[: args.pages]]
    ratios, overheads = [], []
    print(f"pages: {len(ids)}, simulator in a {args.server}, load average before: {os.getloadavg()[0]:.2f} "
          "(2 cores: above ~1 means contention)")
    with tempfile.TemporaryDirectory() as scratch, simulator_url(records, args.server, Path(scratch)) as base_url:
        # warm both sides up (connection pool, server caches, the crawler's lazy imports) before timing
        bare_loop(base_url, ids[:20])
        crawler_run(base_url, ids[:20], Path(scratch) / "warm-up")
        for round_number in range(1, args.repeats + 1):
            bare = bare_loop(base_url, ids)
            crawled = crawler_run(base_url, ids, Path(scratch) / f"round{round_number}")
            ratios.append(bare / crawled)
            overheads.append(1000 * (crawled - bare) / len(ids))
            print(f"round {round_number}: bare {ms_per_page(bare, len(ids))}, crawler {ms_per_page(crawled, len(ids))}"
                  f", ratio {ratios[-1]:.2f}x")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"ratio crawler/bare: median {statistics.median(ratios):.2f}x over {len(ratios)} rounds "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f}; target >= 0.8x)")
    print(f"crawler overhead:   median {statistics.median(overheads):.2f} ms/page")


if __name__ == "__main__":
    main()
