"""Round trip: all ~10k real records → simulator (mixed eras) → crawl → WARC → parse → the same records.

Seeding: by ids only (an ids file of every record). Listing pages cannot reach a book that is beyond the
first 1,000 of each of its tags (Douban serves no listing from start=1000 on), and listing traversal and
its faults are covered by test_crawl.py; this test is about the pages' content surviving the trip.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from imcm_build.crawl.crawler import CrawlConfig, parse_archives, run_crawl
from imcm_build.records import Record, read_records
from imcm_build.simulator import DoubanSimulator, load_simulator_records
from tests.conftest import shared_path


def normalised(text: str) -> str:
    """The parser's documented normalisation: paragraphs (lines) stripped, empty ones dropped, joined by \\n."""
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def mismatches(original: Record, parsed: Record) -> list[str]:
    fields = []
    if parsed.title != original.title:
        fields.append("title")
    if parsed.tags != original.tags:
        fields.append("tags")
    if parsed.summary != normalised(original.summary):
        fields.append("summary")
    if parsed.author_intro != normalised(original.author_intro):
        fields.append("author_intro")
    return fields


@pytest.mark.slow
def test_every_record_survives_crawl_and_parse(tmp_path: Path) -> None:
    originals = load_simulator_records(shared_path("douban-public/records.jsonl"))
    assert len(originals) > 10_000
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(record.id for record in originals) + "\n", encoding="utf-8")
    out = tmp_path / "crawl"
    started = time.monotonic()
    with DoubanSimulator(originals, era="mixed") as simulator:
        report = run_crawl(CrawlConfig(out=str(out), base_url=simulator.base_url, delay=0.0, jitter=0.0,
                                       ids_file=str(ids_file), progress=False))
    crawled = time.monotonic()
    assert (report.status, report.fetched_this_run, report.errors) == ("complete", len(originals), {})

    summary = parse_archives([out], out / "records.jsonl")
    print(f"\ncrawl {crawled - started:.1f} s, parse {time.monotonic() - crawled:.1f} s, {len(originals)} pages")
    assert summary.errors == [] and summary.replaced_duplicates == 0
    parsed = {item.id: item for item in read_records([out / "records.jsonl"]) if isinstance(item, Record)}
    assert set(parsed) == {record.id for record in originals}

    wrong = Counter(name for record in originals for name in mismatches(record, parsed[record.id]))
    assert wrong == Counter()
    eras = Counter(parsed[record.id].tag_source for record in originals)
    assert set(eras) <= {"tag_block+criteria", "tag_block", "criteria", "none"} and len(eras) >= 2
