"""The record contract between the crawler and the builder.

One JSON object per line (JSONL, UTF-8, optionally gzip-compressed):

    {"id": "1000121", "title": str, "summary": str, "author_intro": str,
     "tags": [str, ...], "url": str, "fetched_at": str?, "source": str?, "tag_source": str?}

`id` is the Douban subject id (a non-empty string), `tags` are in page order (most-voted first).
Reading never drops a line silently: every line either yields a `Record` or a `Rejection` that names
the file, the line number and the reason.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REQUIRED_STRING_FIELDS = ("id", "title", "summary", "url")
OPTIONAL_STRING_FIELDS = ("author_intro", "fetched_at", "source", "tag_source")


class RecordError(ValueError):
    """A record that breaks the contract; the message names file:line and the reason."""

    def __init__(self, origin: str, reason: str, detail: str) -> None:
        super().__init__(f"{origin}: {reason}: {detail}")
        self.origin, self.reason, self.detail = origin, reason, detail


@dataclass(frozen=True)
class Record:
    id: str
    title: str
    summary: str
    tags: tuple[str, ...]
    url: str
    author_intro: str = ""
    fetched_at: str | None = None
    source: str | None = None
    tag_source: str | None = None
    origin: str = field(default="", compare=False)  # "file:line" the record was read from

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("origin")
        data["tags"] = list(self.tags)
        data = {key: value for key, value in data.items() if value is not None}
        return json.dumps(data, ensure_ascii=False)


@dataclass(frozen=True)
class Rejection:
    origin: str  # "file:line"
    reason: str  # a short machine-friendly kind, e.g. "malformed_json"
    detail: str  # a human explanation

    def __str__(self) -> str:
        return f"{self.origin}: {self.reason}: {self.detail}"


def _open_lines(path: Path) -> Iterator[bytes]:
    """The lines of `path` (gunzipped when it ends in .gz); RecordError naming the file and the last line
    read when a .gz file is cut short or is not gzip at all."""
    if path.suffix != ".gz":
        with open(path, "rb") as handle:
            yield from handle
        return
    lines_read = 0
    try:
        with gzip.open(path, "rb") as handle:
            for line in handle:
                lines_read += 1
                yield line
    except EOFError:
        raise RecordError(
            f"{path}:{lines_read + 1}", "truncated_gzip",
            f"the gzip file ends early, after {lines_read} complete line(s): it was cut short",
        ) from None
    except (gzip.BadGzipFile, zlib.error) as error:
        where = f"{path}:{lines_read + 1}" if lines_read else str(path)
        raise RecordError(where, "bad_gzip", f"not a readable gzip file ({error}); a plain JSONL file must not end in .gz") from None


def parse_record(obj: Any, origin: str) -> Record:
    """Validate one decoded JSON value; raise RecordError naming `origin` and the reason."""
    if not isinstance(obj, dict):
        raise RecordError(origin, "not_an_object", f"expected a JSON object, got {type(obj).__name__}")
    for name in REQUIRED_STRING_FIELDS:
        if name not in obj:
            raise RecordError(origin, "missing_field", f"field {name!r} is missing")
        if not isinstance(obj[name], str):
            raise RecordError(origin, "wrong_type", f"field {name!r} must be a string, got {type(obj[name]).__name__}"
            )
    for name in OPTIONAL_STRING_FIELDS:
        if obj.get(name) is not None and not isinstance(obj[name], str):
            raise RecordError(origin, "wrong_type", f"field {name!r} must be a string, got {type(obj[name]).__name__}"
            )
    if not obj["id"].strip():
        raise RecordError(origin, "empty_id", "field 'id' is empty")
    tags = obj.get("tags")
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise RecordError(origin, "wrong_type", "field 'tags' must be a list of strings")
    return Record(
        id=obj["id"].strip(),
        title=obj["title"],
        summary=obj["summary"],
        author_intro=obj.get("author_intro") or "",
        tags=tuple(tags),
        url=obj["url"],
        fetched_at=obj.get("fetched_at"),
        source=obj.get("source"),
        tag_source=obj.get("tag_source"),
        origin=origin,
    )


def read_records(paths: Iterable[str | Path]) -> Iterator[Record | Rejection]:
    """Yield every line of every file as a Record or a Rejection, in file order.

    Duplicate ids (across all files) are rejected after the first occurrence.
    """
    seen: dict[str, str] = {}
    for path in map(Path, paths):
        if not path.exists():
            raise RecordError(str(path), "file_not_found", "no such records file")
        for number, raw in enumerate(_open_lines(path), start=1):
            origin = f"{path}:{number}"
            if not raw.strip():
                yield Rejection(origin, "blank_line", "the line is empty")
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                yield Rejection(origin, "invalid_utf8", str(error))
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as error:
                # json's own message may end in "at" ("Invalid control character at")
                yield Rejection(origin, "malformed_json", f"{error.msg.removesuffix(' at')} at column {error.colno}")
                continue
            try:
                record = parse_record(obj, origin)
            except RecordError as error:
                yield Rejection(origin, error.reason, error.detail)
                continue
            if record.id in seen:
                yield Rejection(origin, "duplicate_id", f"id {record.id!r} already read at {seen[record.id]}")
                continue
            seen[record.id] = origin
            yield record


def write_records(records: Iterable[Record], path: str | Path) -> int:
    """Write records as JSONL atomically (temp file, then rename); return how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".partial")
    count = 0
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(temp, "wt", encoding="utf-8") as handle:
        for record in records:
            handle.write(record.to_json() + "\n")
            count += 1
    temp.replace(path)
    return count
