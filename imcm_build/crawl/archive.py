"""The crawl archive: every HTTP response the crawler receives, as gzipped WARC files.

Layout: ``<out>/archive/crawl-00000.warc.gz``, ``crawl-00001.warc.gz``, ... A new file is started when the
current one passes ``max_bytes`` and at the start of every run, so a file is only ever appended to by one
run. Each exchange is a WARC ``request`` record followed by its ``response`` record.

What is stored, and what is not:

* The request record carries the request line and headers **without** ``Cookie`` (and without
  ``Authorization``): a user's Douban session cookie never reaches the archive.
* The response record carries the status line, the headers and the body. ``Set-Cookie`` is removed (it is
  session state, not page content). The body is stored *decoded*: ``requests`` has already undone any
  ``Content-Encoding``/``Transfer-Encoding``, so those headers are renamed ``X-Archive-Orig-...`` and
  ``Content-Length`` is set to the stored length, which keeps the record self-consistent for WARC readers.
* ``WARC-IMCM-Outcome`` says what the crawler made of the response: ``ok`` for the one response that
  completed a URL, anything else (``retry:http_503``, ``blocked:login_wall``, ``refused:offsite_redirect``,
  ...) for responses kept only so a user can see what happened. Parsing uses ``ok`` responses.
* ``WARC-IMCM-Requested-URI`` is the address the crawler asked for, when redirects led elsewhere (Douban
  sends merged subjects to the surviving page); a resumed crawl matches archived pages to its state by it.
"""

from __future__ import annotations

import io
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from isal import isal_zlib
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

ARCHIVE_DIR = "archive"
FILE_PATTERN = "crawl-{:05d}.warc.gz"
FILE_RE = re.compile(r"^crawl-(\d{5})\.warc\.gz$")
OUTCOME_HEADER = "WARC-IMCM-Outcome"
OUTCOME_OK = "ok"
REQUESTED_HEADER = "WARC-IMCM-Requested-URI"
GZIP_WBITS = 16 + zlib.MAX_WBITS
SCAN_CHUNK = 1 << 20
PRIVATE_REQUEST_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization"})
PRIVATE_RESPONSE_HEADERS = frozenset({"set-cookie", "set-cookie2"})
RENAMED_RESPONSE_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})
DEFAULT_COMPRESS_LEVEL = 6


class ArchiveError(ValueError):
    """An archive file that cannot be read; the message names the file and the offset."""


@dataclass(frozen=True)
class ArchivedResponse:
    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    fetched_at: str
    outcome: str = OUTCOME_OK
    requested_url: str = ""  # the URL the crawler asked for (differs from `url` after a redirect)
    file: str = ""
    offset: int = 0


@dataclass(frozen=True)
class Exchange:
    """One HTTP request/response pair as the client saw it (body already decoded)."""

    url: str
    method: str
    request_headers: Mapping[str, str]
    status: int
    reason: str
    response_headers: Mapping[str, str]
    body: bytes
    fetched_at: str  # ISO 8601 UTC, e.g. 2024-05-01T12:00:00.123456Z
    http_version: str = "HTTP/1.1"


def archive_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (a crawl folder, its archive/ folder) into WARC files, in crawl order."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            folder = path / ARCHIVE_DIR if (path / ARCHIVE_DIR).is_dir() else path
            found.extend(sorted(p for p in folder.iterdir() if p.name.endswith((".warc.gz", ".warc"))))
        elif path.exists():
            found.append(path)
        else:
            raise ArchiveError(f"{path}: no such archive file or folder")
    return found


def _request_record_headers(exchange: Exchange) -> StatusAndHeaders:
    from urllib.parse import urlsplit

    parts = urlsplit(exchange.url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    headers = [(k, v) for k, v in exchange.request_headers.items() if k.lower() not in PRIVATE_REQUEST_HEADERS]
    if not any(k.lower() == "host" for k, _ in headers):
        headers.insert(0, ("Host", parts.netloc))
    return StatusAndHeaders(f"{exchange.method} {target} {exchange.http_version}", headers, is_http_request=True)


def _response_record_headers(exchange: Exchange) -> StatusAndHeaders:
    headers: list[tuple[str, str]] = []
    for name, value in exchange.response_headers.items():
        lowered = name.lower()
        if lowered in PRIVATE_RESPONSE_HEADERS:
            continue
        if lowered in RENAMED_RESPONSE_HEADERS:
            headers.append((f"X-Archive-Orig-{name}", value))
            continue
        headers.append((name, value))
    headers.append(("Content-Length", str(len(exchange.body))))
    status_line = f"{exchange.status} {exchange.reason}".strip()
    return StatusAndHeaders(status_line, headers, protocol=exchange.http_version)


class WarcArchive:
    """Appends exchanges to rotating gzipped WARC files under ``folder``; one writer per run.

    :meth:`write` is :meth:`serialize` (build the WARC records) then :meth:`append` (gzip and write them).
    """

    def __init__(self, folder: str | Path, max_bytes: int = 100 * 1024 * 1024,
                 compress_level: int = DEFAULT_COMPRESS_LEVEL) -> None:
        if max_bytes <= 0:
            raise ValueError(f"archive max size must be positive, got {max_bytes} bytes")
        if not 0 <= compress_level <= 9:
            raise ValueError(f"gzip compression level must be 0-9, got {compress_level}")
        self.compress_level = compress_level
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._index = self._next_free_index()
        self._handle: io.BufferedWriter | None = None
        self._builder = WARCWriter(io.BytesIO(), gzip=False, warc_version="1.1")  # records, serialized uncompressed

    def _next_free_index(self) -> int:
        indexes = [int(m.group(1)) for p in self.folder.iterdir() if (m := FILE_RE.match(p.name))]
        return max(indexes, default=-1) + 1

    @property
    def current_path(self) -> Path:
        return self.folder / FILE_PATTERN.format(self._index)

    def _open(self) -> io.BufferedWriter:
        if self._handle is not None and self._handle.tell() >= self.max_bytes:
            self.close()
            self._index += 1
        if self._handle is None:
            self._handle = open(self.current_path, "ab")  # noqa: SIM115 - kept open across writes
            info = self._builder.create_warcinfo_record(
                self.current_path.name, {"software": "imcm-toolkit crawler", "format": "WARC File Format 1.1"}
            )
            self._handle.write(self._gzip_member(_record_bytes(self._builder, info)))
        return self._handle

    def _gzip_member(self, record: bytes) -> bytes:
        """One record as its own gzip member (the usual .warc.gz layout). Levels 0-3 use ISA-L, which at
        level 1 is ~5x faster than zlib's level 1 for the same size; 4-9 use zlib."""
        compressor = isal_zlib if self.compress_level <= isal_zlib.ISAL_BEST_COMPRESSION else zlib
        return compressor.compress(record, self.compress_level, GZIP_WBITS)

    def serialize(self, exchange: Exchange, outcome: str, requested_url: str | None = None) -> tuple[bytes, bytes]:
        """The response record and its request record, uncompressed (see :meth:`write`)."""
        builder = self._builder
        warc_headers = {"WARC-Date": exchange.fetched_at, OUTCOME_HEADER: outcome}
        if requested_url and requested_url != exchange.url:
            warc_headers[REQUESTED_HEADER] = requested_url
        response = builder.create_warc_record(
            exchange.url, "response", payload=io.BytesIO(exchange.body), length=len(exchange.body),
            http_headers=_response_record_headers(exchange), warc_headers_dict=dict(warc_headers),
        )
        request_headers = {**warc_headers, "WARC-Concurrent-To": response.rec_headers.get_header("WARC-Record-ID")}
        request = builder.create_warc_record(
            exchange.url, "request", payload=io.BytesIO(b""), length=0,
            http_headers=_request_record_headers(exchange), warc_headers_dict=request_headers,
        )
        return _record_bytes(builder, response), _record_bytes(builder, request)

    def append(self, records: Iterable[bytes]) -> tuple[str, int]:
        """gzip and append serialized records, flushed to the OS; return (file name, offset just past them)."""
        handle = self._open()
        for record in records:
            handle.write(self._gzip_member(record))
        handle.flush()
        return self.current_path.name, handle.tell()

    def write(self, exchange: Exchange, outcome: str, durable: bool = False, requested_url: str | None = None
              ) -> tuple[str, int]:
        """Append the response and request records; with ``durable``, flush and fsync before returning.

        ``requested_url`` is the URL the crawler asked for when redirects led to ``exchange.url``.
        Returns (file name, offset just past the pair).
        """
        position = self.append(self.serialize(exchange, outcome, requested_url))
        if durable:
            self.sync()
        return position

    def sync(self) -> None:
        """Flush and fsync what was written so far (group commit of several non-durable writes). The fsync
        happens even when the flush fails, so records that reached the OS before a failed write are kept."""
        if self._handle is not None:
            try:
                self._handle.flush()
            finally:
                os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
        self._handle = None

    def __enter__(self) -> WarcArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _record_bytes(builder: WARCWriter, record) -> bytes:  # noqa: ANN001 - warcio record type is untyped
    buffer = builder.out
    buffer.seek(0)
    buffer.truncate()
    builder.write_record(record)
    return buffer.getvalue()


def _decoded_headers(record) -> dict[str, str]:  # noqa: ANN001 - warcio record type is untyped
    return {name: value for name, value in record.http_headers.headers}


def iter_file_responses(path: str | Path, start: int = 0) -> Iterator[ArchivedResponse]:
    """The response records of one WARC file, beginning at byte offset ``start`` (a record boundary)."""
    path = Path(path)
    whole = complete_length(path, start)
    if whole < path.stat().st_size:
        raise ArchiveError(
            f"{path}: torn WARC record at offset {whole} (a crawl was killed while writing); "
            "rerun the crawl to repair it, or cut it with imcm_build.crawl.archive.repair_tail"
        )
    with open(path, "rb") as handle:
        handle.seek(start)
        records = ArchiveIterator(handle)
        try:
            for record in records:
                if record.rec_type != "response":
                    continue
                body = record.content_stream().read()
                offset = start + records.get_record_offset()
                yield ArchivedResponse(
                    url=record.rec_headers.get_header("WARC-Target-URI"),
                    status=int(record.http_headers.get_statuscode()),
                    headers=_decoded_headers(record),
                    body=body,
                    fetched_at=record.rec_headers.get_header("WARC-Date"),
                    outcome=record.rec_headers.get_header(OUTCOME_HEADER) or OUTCOME_OK,
                    requested_url=record.rec_headers.get_header(REQUESTED_HEADER)
                    or record.rec_headers.get_header("WARC-Target-URI"),
                    file=str(path),
                    offset=offset,
                )
        except (ArchiveLoadFailed, EOFError, OSError, ValueError) as error:
            reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
            raise ArchiveError(f"{path}: unreadable WARC record after offset {start}: {reason!r}") from error


def iter_responses(paths: Iterable[str | Path]) -> Iterator[ArchivedResponse]:
    """Every WARC response record of the given files/folders, in crawl order (whatever its outcome)."""
    for path in archive_files(paths):
        yield from iter_file_responses(path)


def complete_length(path: str | Path, start: int = 0) -> int:
    """End offset of the last whole gzip member (WARC record) of ``path``, scanning from ``start``.

    A member counts only when zlib reaches its end and checks its CRC trailer. A crawl killed while
    writing leaves at most one torn record at the end; everything before it is intact because every
    completed page was fsynced before its state was committed.
    """
    good = position = start
    member = zlib.decompressobj(GZIP_WBITS)
    with open(path, "rb") as handle:
        handle.seek(start)
        while chunk := handle.read(SCAN_CHUNK):
            while chunk:
                try:
                    member.decompress(chunk)
                except zlib.error:
                    return good
                if not member.eof:
                    position += len(chunk)
                    break
                position += len(chunk) - len(member.unused_data)
                good, chunk = position, member.unused_data
                member = zlib.decompressobj(GZIP_WBITS)
    return good


def repair_tail(path: str | Path, start: int = 0) -> int:
    """Cut a torn final record off ``path`` (checking from ``start``); return the bytes removed."""
    path = Path(path)
    size = path.stat().st_size
    good = complete_length(path, start)
    if good < size:
        with open(path, "r+b") as handle:
            handle.truncate(good)
            handle.flush()
            os.fsync(handle.fileno())
    return size - good
