"""The crawler's own overhead per page, against the local simulator with zero delay.

In one run, over the same subject URLs: a bare `requests.Session().get(...).content` loop, then the
crawler (robots.txt, classification of every page, WARC archive with gzip, SQLite state, fsync). Prints
pages/s of both and the ratio crawler / bare (target >= 0.8).

    python benchmarks/crawl_overhead.py [--records FILE] [--pages N]
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", help="records JSONL to serve (default: the generated demo corpus)")
    parser.add_argument("--pages", type=int, default=500, help="subject pages per side (default 500)")
    args = parser.parse_args()
    records = load_simulator_records(args.records) if args.records else generate_demo_records(args.pages, seed=0)
    ids = [record.id for record in records[: args.pages]]
    with DoubanSimulator(records) as simulator, tempfile.TemporaryDirectory() as scratch:
        bare_loop(simulator.base_url, ids[:20])  # warm up the server and the connection pool
        bare = bare_loop(simulator.base_url, ids)
        crawled = crawler_run(simulator.base_url, ids, Path(scratch))
    print(f"pages: {len(ids)}")
    print(f"bare requests loop: {len(ids) / bare:8.1f} pages/s ({1000 * bare / len(ids):.2f} ms/page)")
    print(f"crawler:            {len(ids) / crawled:8.1f} pages/s ({1000 * crawled / len(ids):.2f} ms/page)")
    print(f"ratio crawler/bare: {bare / crawled:.2f}x (target >= 0.8x)")
    print(f"crawler overhead:   {1000 * (crawled - bare) / len(ids):.2f} ms/page")


if __name__ == "__main__":
    main()
