"""The crawler's own overhead per page, against the local simulator with zero delay.

In one run, over the same subject URLs and the same simulator: a bare `requests.Session().get(...).content`
loop, then the crawler (robots.txt, classification of every page, WARC archive with gzip, SQLite state,
fsync), alternated ``--repeats`` times so that a burst of load from other processes hits both sides. Prints
pages/s of both per round, and the median ratio crawler / bare (target >= 0.8).

    python benchmarks/crawl_overhead.py [--records FILE] [--pages N] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import requests

from imcm_build.crawl.crawler import CrawlConfig, run_crawl
from imcm_build.demo_corpus import generate_demo_records
from imcm_build.simulator import DoubanSimulator, load_simulator_records


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
    parser.add_argument("--pages", type=int, default=500, help="subject pages per side (default 500)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of bare loop + crawl (default 3)")
    args = parser.parse_args()
    records = load_simulator_records(args.records) if args.records else generate_demo_records(args.pages, seed=0)
    ids = [record.id for record in records[: args.pages]]
    ratios, overheads = [], []
    print(f"pages: {len(ids)}, load average before: {os.getloadavg()[0]:.2f} (2 cores: above ~1 means contention)")
    with DoubanSimulator(records) as simulator, tempfile.TemporaryDirectory() as scratch:
        bare_loop(simulator.base_url, ids[:20])  # warm up the server and the connection pool
        for round_number in range(1, args.repeats + 1):
            bare = bare_loop(simulator.base_url, ids)
            crawled = crawler_run(simulator.base_url, ids, Path(scratch) / f"round{round_number}")
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
