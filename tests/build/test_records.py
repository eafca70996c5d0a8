from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from imcm_build.records import Record, RecordError, Rejection, read_records, write_records
from tests.conftest import shared_path

GOOD = {"id": "1", "title": "书", "summary": "内容", "author_intro": "", "tags": ["小说"], "url": "u"}


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def dump(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def test_every_bad_line_is_rejected_with_file_line_and_reason(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "r.jsonl",
        [
            dump(GOOD),
            dump(GOOD)[:-7],  # truncated line
            dump({**GOOD, "id": "2", "tags": "小说"}),  # wrong type
            dump({**GOOD, "id": "1"}),  # duplicate id
            dump({**GOOD, "id": "  "}),  # empty id
            dump({k: v for k, v in GOOD.items() if k != "summary"} | {"id": "3"}),  # missing field
            b'{"id": "4", "title": "\xff\xfe"}',  # invalid UTF-8
            b"",  # blank line
            dump(["not", "an", "object"]),
            dump({**GOOD, "id": 5}),  # id of the wrong type
        ],
    )
    items = list(read_records([path]))
    assert len(items) == 10, "every line yields exactly one item: nothing is dropped silently"
    assert isinstance(items[0], Record)
    rejections = [item for item in items if isinstance(item, Rejection)]
    reasons = [r.reason for r in rejections]
    assert reasons == [
        "malformed_json", "wrong_type", "duplicate_id", "empty_id", "missing_field",
        "invalid_utf8", "blank_line", "not_an_object", "wrong_type",
    ]
    assert rejections[0].origin == f"{path}:2"
    assert "r.jsonl:1" in rejections[2].detail  # the duplicate names where the first copy was read


def test_duplicate_ids_are_detected_across_files_and_gzip_is_read(tmp_path: Path) -> None:
    first = write_lines(tmp_path / "a.jsonl", [dump(GOOD)])
    second = tmp_path / "b.jsonl.gz"
    with gzip.open(second, "wb") as handle:
        handle.write(dump({**GOOD, "title": "另一本"}) + b"\n" + dump({**GOOD, "id": "9"}) + b"\n")
    items = list(read_records([first, second]))
    assert [type(item).__name__ for item in items] == ["Record", "Rejection", "Record"]
    assert items[1].origin == f"{second}:1"


def test_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="nope.jsonl: file_not_found"):
        list(read_records([tmp_path / "nope.jsonl"]))


def test_write_then_read_round_trips_and_leaves_no_partial_file(tmp_path: Path) -> None:
    records = [Record(id=str(i), title=f"t{i}", summary="s", tags=("a", "b"), url="u", fetched_at="now") for i in range(3)]
    path = tmp_path / "out.jsonl.gz"
    assert write_records(records, path) == 3
    assert list(read_records([path])) == records
    assert not list(tmp_path.glob("*.partial"))


def test_all_shared_records_validate() -> None:
    path = shared_path("douban-public/records.jsonl")
    items = list(read_records([path]))
    assert all(isinstance(item, Record) for item in items)
    assert len(items) == sum(1 for _ in path.open(encoding="utf-8"))


def test_a_truncated_gzip_is_an_error_naming_the_file_and_the_line(tmp_path: Path) -> None:
    real = shared_path("douban-public/records.jsonl").read_bytes()
    whole = gzip.compress(real[: 400_000])
    cut = tmp_path / "records.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    items = []
    with pytest.raises(RecordError, match=rf"{cut}:\d+: truncated_gzip: the gzip file ends early") as caught:
        items.extend(read_records([cut]))
    assert items and all(isinstance(item, Record) for item in items)
    assert caught.value.origin == f"{cut}:{len(items) + 1}"


def test_a_plain_file_named_gz_is_an_error_naming_the_file(tmp_path: Path) -> None:
    plain = tmp_path / "records.jsonl.gz"
    plain.write_bytes(shared_path("douban-public/records.jsonl").read_bytes()[:20_000])
    with pytest.raises(RecordError, match=rf"{plain}: bad_gzip: not a readable gzip file"):
        list(read_records([plain]))
