"""WARC archive: what is stored (and what never is), rotation, reading back, torn-tail repair."""

from __future__ import annotations

import gzip
import random
import time
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from imcm_build.crawl import archive_writer
from imcm_build.crawl.archive import (
    ArchiveError,
    Exchange,
    WarcArchive,
    archive_files,
    complete_length,
    iter_responses,
    repair_tail,
)
from imcm_build.crawl.archive_writer import ArchiveWriter, ArchiveWriterDied

COOKIE = "dbcl2=\"123:SECRETVALUE\"; bid=ABCDEF"


def exchange(number: int, status: int = 200, body: bytes | None = None) -> Exchange:
    return Exchange(
        url=f"http://127.0.0.1:8000/subject/{number}/",
        method="GET",
        request_headers={"User-Agent": "imcm-toolkit/0.1", "Cookie": COOKIE, "Accept": "*/*"},
        status=status,
        reason="OK" if status == 200 else "Service Unavailable",
        response_headers={"Content-Type": "text/html; charset=utf-8", "Set-Cookie": "bid=SERVERSIDE; path=/",
                          "Content-Encoding": "gzip", "Content-Length": "17"},
        body=body if body is not None else f"<html><body>书 {number}</body></html>".encode(),
        fetched_at=f"2024-05-01T12:00:{number:02d}.250000Z",
    )


def test_responses_round_trip_with_outcome_and_without_secrets(tmp_path: Path) -> None:
    with WarcArchive(tmp_path) as archive:
        archive.write(exchange(1, 503, b"busy"), "retry:http_503")
        archive.write(exchange(1), "ok", durable=True)
        archive.write(exchange(2), "ok", durable=True, requested_url="http://127.0.0.1:8000/subject/2")
    responses = list(iter_responses([tmp_path]))
    assert [(r.url, r.status, r.outcome) for r in responses] == [
        ("http://127.0.0.1:8000/subject/1/", 503, "retry:http_503"),
        ("http://127.0.0.1:8000/subject/1/", 200, "ok"),
        ("http://127.0.0.1:8000/subject/2/", 200, "ok"),
    ]
    assert responses[1].body == "<html><body>书 1</body></html>".encode()
    assert responses[1].fetched_at == "2024-05-01T12:00:01.250000Z"
    assert responses[2].requested_url == "http://127.0.0.1:8000/subject/2"
    assert responses[1].headers["X-Archive-Orig-Content-Encoding"] == "gzip"
    assert responses[1].headers["Content-Length"] == str(len(responses[1].body))
    raw = b"".join(gzip.decompress(path.read_bytes()) for path in archive_files([tmp_path]))
    assert b"SECRETVALUE" not in raw and b"SERVERSIDE" not in raw
    assert b"User-Agent: imcm-toolkit/0.1" in raw  # the request itself is kept


def test_records_are_standard_warc_request_response_pairs(tmp_path: Path) -> None:
    with WarcArchive(tmp_path) as archive:
        archive.write(exchange(1), "ok", durable=True)
    with open(tmp_path / "crawl-00000.warc.gz", "rb") as handle:
        records = list(ArchiveIterator(handle))
    assert [record.rec_type for record in records] == ["warcinfo", "response", "request"]
    response, request = records[1], records[2]
    assert (request.http_headers.protocol, request.http_headers.statusline) == ("GET", "/subject/1/ HTTP/1.1")
    assert request.rec_headers.get_header("WARC-Concurrent-To") == response.rec_headers.get_header("WARC-Record-ID")


def test_files_rotate_by_size_and_each_run_starts_a_new_file(tmp_path: Path) -> None:
    big = b"<html>" + random.Random(0).randbytes(8000) + b"</html>"  # incompressible: files fill up quickly
    with WarcArchive(tmp_path, max_bytes=20_000) as archive:
        for number in range(6):
            archive.write(exchange(number, body=big), "ok")
    first_run = [path.name for path in archive_files([tmp_path])]
    assert len(first_run) >= 2
    with WarcArchive(tmp_path, max_bytes=20_000) as archive:
        name, _ = archive.write(exchange(9), "ok")
    assert name not in first_run
    assert [r.url.split("/")[-2] for r in iter_responses([tmp_path])] == ["0", "1", "2", "3", "4", "5", "9"]


def test_torn_tail_is_detected_and_cut(tmp_path: Path) -> None:
    with WarcArchive(tmp_path) as archive:
        _, first_end = archive.write(exchange(1), "ok", durable=True)
        archive.write(exchange(2), "ok", durable=True)
    path = tmp_path / "crawl-00000.warc.gz"
    whole = path.read_bytes()
    for cut in (5, 300, 700):  # killed while writing record 2 (gzip trailer, request, response body)
        path.write_bytes(whole[: len(whole) - cut])
        with pytest.raises(ArchiveError, match="crawl-00000.warc.gz: torn WARC record"):
            list(iter_responses([path]))
        assert first_end <= complete_length(path) < len(whole) - cut
    good = complete_length(path)
    assert good == first_end  # the response of record 2 was cut: only record 1 is whole
    assert repair_tail(path) == len(whole) - 700 - good
    assert [r.url for r in iter_responses([path])] == ["http://127.0.0.1:8000/subject/1/"]
    assert repair_tail(path) == 0


def test_missing_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="nowhere.warc.gz: no such archive"):
        list(iter_responses([tmp_path / "nowhere.warc.gz"]))


def test_records_carry_valid_warc_digests(tmp_path: Path) -> None:
    with WarcArchive(tmp_path, compress_level=1) as archive:
        for number in range(3):
            archive.write(exchange(number), "ok" if number else "retry:http_503")
    with open(tmp_path / "crawl-00000.warc.gz", "rb") as handle:
        records = list(ArchiveIterator(handle, check_digests="raise"))  # raises on a wrong WARC digest
    assert [record.rec_type for record in records] == ["warcinfo"] + ["response", "request"] * 3


def test_compression_level_is_checked_and_used(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="0-9"):
        WarcArchive(tmp_path, compress_level=10)
    sizes = {}
    body = b"<html>" + b"".join(f"<p>{i} 豆瓣读书 {i * i % 977}</p>".encode() for i in range(6000)) + b"</html>"
    for level in (0, 1, 3, 6, 9):  # 0-3: ISA-L, 4-9: zlib; both must give gzip members every reader opens
        folder = tmp_path / f"level{level}"
        with WarcArchive(folder, compress_level=level) as archive:
            archive.write(exchange(1, body=body), "ok")
        data = (folder / "crawl-00000.warc.gz").read_bytes()
        sizes[level] = len(data)
        assert next(iter_responses([folder])).body == body
        members = gzip.decompress(data).count(b"WARC/1.1\r\n")
        assert members == 3  # warcinfo, response, request
    assert sizes[0] > sizes[1] > sizes[3] and sizes[1] > sizes[6] > sizes[9]


def test_the_writer_process_writes_in_order_and_reports_positions(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path, compress_level=1) as writer:
        numbers = [writer.write(exchange(n), "ok") for n in range(1, 6)]
        assert not writer._process.poll()  # still running
        written, error, _ = writer.sync()
        more = writer.write(exchange(6), "retry:http_503")
        second, _, upto = writer.sync()
    assert error is None and sorted(written) == numbers == [0, 1, 2, 3, 4] and list(second) == [more]
    assert upto == 6  # every write sent is answered for
    ends = [written[n][1] for n in numbers] + [second[more][1]]
    assert ends == sorted(set(ends)) and {written[n][0] for n in numbers} == {"crawl-00000.warc.gz"}
    responses = list(iter_responses([tmp_path]))
    assert [r.url.rsplit("/", 2)[1] for r in responses] == ["1", "2", "3", "4", "5", "6"]
    assert [r.offset for r in responses[1:]] == ends[:-1]  # each pair starts where the previous one ended
    assert writer._process.returncode == 0


def test_a_second_writer_waits_for_the_first_then_gives_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_writer, "LOCK_WAIT", 0.3)
    with ArchiveWriter(tmp_path) as first:
        first.write(exchange(1), "ok")
        first.sync()  # the writer process holds the folder lock from its start
        with pytest.raises(ArchiveError, match="another crawl is still writing"):
            ArchiveWriter(tmp_path)
    with ArchiveWriter(tmp_path) as second:  # the first has finished: the lock is free again
        second.write(exchange(2), "ok")
    assert len(list(iter_responses([tmp_path]))) == 2


def test_a_dead_writer_process_is_reported_not_ignored(tmp_path: Path) -> None:
    writer = ArchiveWriter(tmp_path)
    writer.write(exchange(1), "ok")
    writer.sync()
    writer._process.kill()
    writer._process.wait()
    writer.write(exchange(2), "ok")
    with pytest.raises(ArchiveWriterDied, match="ended unexpectedly"):
        writer.sync()
    writer.close()
    assert [r.url for r in iter_responses([tmp_path])] == ["http://127.0.0.1:8000/subject/1/"]


def test_a_requested_sync_is_answered_while_the_crawler_goes_on(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path) as writer:
        first = [writer.write(exchange(n), "ok") for n in range(1, 4)]
        writer.request_sync()
        later = writer.write(exchange(4), "ok")  # sent after the request: not part of its answer
        assert writer.sync_pending
        deadline = time.monotonic() + 10
        answered = writer.poll()
        while not answered.written and time.monotonic() < deadline:
            time.sleep(0.01)
            answered = writer.poll()
        assert sorted(answered.written) == first and answered.upto == 3 and answered.error is None
        assert not writer.sync_pending and writer.poll().written == {}  # nothing new: returns at once
        assert list(writer.sync().written) == [later]
