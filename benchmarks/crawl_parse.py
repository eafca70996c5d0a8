"""Parse speed: real Douban subject pages read back from a WARC, against the 200 pages/s target.

Builds a gzipped WARC in a temporary folder from the real subject pages in shared/data/douban-html
(repeated to --pages pages), then, on one core, times reading it with `warcio.ArchiveIterator` plus
`parse_subject`, and in the same run two baselines over the same bodies: BeautifulSoup over the whole
page (on a sample: it is slow) and `lxml.html` parsing alone. Prints pages/s, MB/s and the ratios.

    IMCM_SHARED_DATA=/work/shared/data python benchmarks/crawl_parse.py [--pages 2000]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path

import lxml.html
from bs4 import BeautifulSoup
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from imcm_build.crawl.parse import parse_subject
from imcm_build.records import Record

TARGET_PAGES_PER_SECOND = 200
SUBJECT_PAGES = {  # file under douban-html/ -> subject id
    "mikihau/douban-book_27119879.html": "27119879",
    "boofilsic/https___book_douban_com_subject_1089243_.html": "1089243",
    "boofilsic/https___book_douban_com_subject_35902899_.html": "35902899",
    "nevertoomanybooks/douban_9787532190294_25930607.html": "25930607",
    "nevertoomanybooks/douban_9787532190294_36897178.html": "36897178",
    "nevertoomanybooks/douban_9787536692930_36874304.html": "36874304",
}


def load_pages(data_root: Path) -> list[tuple[str, bytes]]:
    pages = []
    for relative, subject_id in SUBJECT_PAGES.items():
        path = data_root / "douban-html" / relative
        if not path.exists():
            sys.exit(f"missing real page {path} (is --data the shared data folder?)")
        pages.append((f"https://book.douban.com/subject/{subject_id}/", path.read_bytes()))
    return pages


def write_warc(path: Path, pages: list[tuple[str, bytes]], count: int) -> int:
    """Write `count` response records cycling through `pages`; return the total body bytes."""
    total = 0
    with path.open("wb") as output:
        writer = WARCWriter(output, gzip=True)
        for url, body in itertools.islice(itertools.cycle(pages), count):
            headers = StatusAndHeaders(
                "200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1"
            )
            record = writer.create_warc_record(url, "response", payload=BytesIO(body), http_headers=headers)
            writer.write_record(record)
            total += len(body)
    return total


def archived_pages(path: Path) -> Iterator[tuple[str, bytes]]:
    with path.open("rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type == "response":
                yield record.rec_headers.get_header("WARC-Target-URI"), record.content_stream().read()


def parse_warc(path: Path) -> int:
    parsed = 0
    for url, body in archived_pages(path):
        result = parse_subject(body, url)
        if not isinstance(result, Record):
            sys.exit(f"benchmark page was rejected: {result}")
        parsed += 1
    return parsed


def cpu_seconds_per_page(parse: Callable[[bytes], object], bodies: list[bytes]) -> float:
    start = time.process_time()
    for body in bodies:
        parse(body)
    return (time.process_time() - start) / len(bodies)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=os.environ.get("IMCM_SHARED_DATA"), help="shared data folder"
    )
    parser.add_argument("--pages", type=int, default=2000, help="pages in the WARC (default 2000)")
    parser.add_argument("--bs4-sample", type=int, default=60, help="pages for the slow bs4 baseline")
    args = parser.parse_args()
    if args.data is None:
        parser.error("give --data or set IMCM_SHARED_DATA")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    pages = load_pages(args.data)
    bodies = [body for _, body in pages]
    with tempfile.TemporaryDirectory() as folder:
        warc = Path(folder) / "pages.warc.gz"
        body_bytes = write_warc(warc, pages, args.pages)
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        parsed = parse_warc(warc)
        cpu = time.process_time() - cpu_start
        wall = time.perf_counter() - wall_start
        warc_mb = warc.stat().st_size / 1e6

    # CPU time is the one-core cost; wall time also counts waiting for a core on a shared machine.
    pages_per_second = parsed / cpu
    mb = body_bytes / 1e6
    lxml_cycle = list(itertools.islice(itertools.cycle(bodies), args.pages))
    bs4_cycle = list(itertools.islice(itertools.cycle(bodies), args.bs4_sample))
    lxml_rate = 1 / cpu_seconds_per_page(lxml.html.document_fromstring, lxml_cycle)
    bs4_rate = 1 / cpu_seconds_per_page(lambda body: BeautifulSoup(body, "lxml").find("h1"), bs4_cycle)

    print(
        f"pages: {parsed} real subject pages ({len(pages)} distinct), {mb:.1f} MB of HTML, {warc_mb:.1f} MB WARC"
    )
    print(
        f"WARC read + parse_subject: {pages_per_second:,.0f} pages/s, {mb / cpu:.1f} MB/s (one core, CPU time)"
    )
    print(f"  wall clock: {parsed / wall:,.0f} pages/s ({wall:.1f} s wall for {cpu:.1f} s CPU)")
    print(f"  vs target {TARGET_PAGES_PER_SECOND} pages/s: {pages_per_second / TARGET_PAGES_PER_SECOND:.2f}x")
    print(
        f"  vs bs4 over the whole page ({bs4_rate:,.0f} pages/s): {pages_per_second / bs4_rate:.1f}x faster"
    )
    print(
        f"  vs lxml parse only ({lxml_rate:,.0f} pages/s): {pages_per_second / lxml_rate:.2f}x of its speed"
    )
    return 0 if pages_per_second >= TARGET_PAGES_PER_SECOND else 1


if __name__ == "__main__":
    sys.exit(main())
