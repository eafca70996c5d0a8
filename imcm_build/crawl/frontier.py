"""Crawl state in SQLite (``<out>/state.sqlite3``, WAL mode): which pages are queued, done or failed.

URLs are kept as host-free paths (``/subject/1000121/``, ``/tag/%E7%BC%96%E7%A8%8B?start=20&type=T``) so a
crawl can be resumed against another base URL (a restarted simulator listens on a new port).

A page becomes ``done`` in one transaction together with the pages it revealed (a listing's subject ids
and next page) and the archive position just past its WARC record; the crawler writes and fsyncs that
record *before* calling :meth:`Frontier.complete`. On restart, ``ok`` records after the committed
position are the pages whose commit was lost: the crawler completes them from the archive instead of
fetching them again.

States: ``queued`` → ``done``; or ``failed`` (retries used up; queued again on the next run), ``gone``
(404/410 and other permanent answers) and ``refused`` (robots.txt disallows it).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

STATE_FILE = "state.sqlite3"
KINDS = ("tag_index", "subject", "listing")  # also the order in which queued pages are fetched
LISTING_PAGE_SIZE = 20
DOUBAN_LISTING_LIMIT = 1000  # Douban serves empty listings from start=1000 on
_SUBJECT_ID = re.compile(r"^[1-9][0-9]{0,11}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS urls (
    path TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('tag_index', 'subject', 'listing')),
    rank INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'done', 'failed', 'gone', 'refused')),
    tag TEXT,
    start INTEGER,
    subject_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    archive_file TEXT,
    done_at TEXT,
    cut INTEGER NOT NULL DEFAULT 0  -- done, but some pages it revealed were left out by max_books
);
CREATE INDEX IF NOT EXISTS urls_next ON urls (state, rank);  -- rowid is implicit: FIFO within a rank
CREATE INDEX IF NOT EXISTS urls_kind ON urls (kind, state);
CREATE TABLE IF NOT EXISTS archive_marks (file TEXT PRIMARY KEY, committed_end INTEGER NOT NULL);
"""


class FrontierError(ValueError):
    """Bad seed input (the message names the file and line) or an invalid URL part."""


@dataclass(frozen=True)
class PageRef:
    """One page of the crawl, identified by its host-free path."""

    path: str
    kind: str
    tag: str | None = None
    start: int | None = None
    subject_id: str | None = None


def tag_index_page() -> PageRef:
    return PageRef("/tag/", "tag_index")


def listing_page(tag: str, start: int = 0) -> PageRef:
    tag = tag.strip()
    if not tag or "\n" in tag or start < 0:
        raise FrontierError(f"invalid tag listing: tag={tag!r} start={start}")
    return PageRef(f"/tag/{quote(tag, safe='')}?start={start}&type=T", "listing", tag=tag, start=start)


def subject_page(subject_id: str) -> PageRef:
    if not _SUBJECT_ID.match(subject_id):
        raise FrontierError(f"invalid subject id {subject_id!r}: digits only")
    return PageRef(f"/subject/{subject_id}/", "subject", subject_id=subject_id)


def path_of(url: str) -> str:
    """The host-free path (with query) of an absolute URL, as the frontier keys it."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def tag_of_listing_path(path: str) -> str:
    return unquote(urlsplit(path).path[len("/tag/"):])


def _read_lines(path: str | Path) -> Iterable[tuple[int, str]]:
    path = Path(path)
    if not path.is_file():
        raise FrontierError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise FrontierError(f"{path}: not UTF-8 text: {error}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            yield number, line


def read_tags_file(path: str | Path) -> list[str]:
    """One tag per line; blank lines and ``#`` comments skipped."""
    return [line for _, line in _read_lines(path)]


def read_ids_file(path: str | Path) -> list[str]:
    """One Douban subject id (digits) or subject URL per line; blank lines and ``#`` comments skipped."""
    ids = []
    for number, line in _read_lines(path):
        match = re.fullmatch(r"(?:https?://[^/]+/subject/)?([1-9][0-9]{0,11})/?", line)
        if not match:
            raise FrontierError(f"{path}:{number}: not a subject id or subject URL: {line[:80]!r}")
        ids.append(match.group(1))
    return ids


class Frontier:
    """The crawl's queue and progress, persisted in SQLite; every method commits before returning, except
    inside :meth:`batch`, which commits its updates together."""

    def __init__(self, path: str | Path, max_books: int | None = None) -> None:
        self.path = Path(path)
        self.max_books = max_books
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a killed process
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Frontier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for several updates: all of them are committed, or (on an error) none."""
        with self._transaction():
            yield

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        if self.db.in_transaction:  # inside batch(): its commit covers this update
            yield
            return
        with self.db:
            self.db.execute("BEGIN")
            yield

    # -- adding pages ---------------------------------------------------------------------------------
    def _subject_room(self) -> int | None:
        if self.max_books is None:
            return None
        (known,) = self.db.execute("SELECT COUNT(*) FROM urls WHERE kind = 'subject'").fetchone()
        return max(0, self.max_books - known)

    def _insert(self, pages: Iterable[PageRef]) -> tuple[int, int]:
        """Insert new pages (known paths are ignored), subjects only while ``max_books`` allows.

        Returns (pages added, subject pages left out by ``max_books``).
        """
        room = self._subject_room()
        added = left_out = 0
        for page in pages:
            if page.kind == "subject" and room is not None and room <= 0:
                left_out += self.state_of(page.path) is None
                continue
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO urls (path, kind, rank, tag, start, subject_id) VALUES (?, ?, ?, ?, ?, ?)",
                (page.path, page.kind, KINDS.index(page.kind), page.tag, page.start, page.subject_id),
            )
            if cursor.rowcount:
                added += 1
                if page.kind == "subject" and room is not None:
                    room -= 1
        return added, left_out

    def add(self, pages: Iterable[PageRef]) -> int:
        """Queue pages not seen before; return how many were new."""
        with self._transaction():
            return self._insert(pages)[0]

    def subjects_full(self) -> bool:
        room = self._subject_room()
        return room is not None and room <= 0

    # -- progress -------------------------------------------------------------------------------------
    def queued(self, limit: int, kinds: Collection[str] | None = None) -> list[PageRef]:
        """Up to ``limit`` queued pages (of ``kinds``, default all), in fetch order."""
        kinds = KINDS if kinds is None else tuple(kinds)
        rows = self.db.execute(
            "SELECT path, kind, tag, start, subject_id FROM urls WHERE state = 'queued'"
            f" AND kind IN ({', '.join('?' * len(kinds))}) ORDER BY rank, rowid LIMIT ?",
            (*kinds, limit),
        ).fetchall()
        return [PageRef(*row) for row in rows]

    def next_queued(self, skip: Collection[str] = ()) -> PageRef | None:
        """The next queued page in fetch order, leaving out the paths in ``skip`` (awaiting their commit)."""
        return next((page for page in self.queued(len(skip) + 1) if page.path not in skip), None)

    def complete(self, path: str, archive_file: str, archive_end: int, found: Iterable[PageRef] = (),
                 done_at: str | None = None, cut: bool = False) -> int:
        """Mark ``path`` done, queue what it revealed and record the archive position, atomically.

        ``cut`` says the caller left out some revealed pages because of ``max_books``; such pages, and
        pages whose subjects ``max_books`` left out here, are listed by :meth:`cut_pages`.
        """
        with self._transaction():
            added, left_out = self._insert(found)
            self.db.execute(
                "UPDATE urls SET state = 'done', attempts = attempts + 1, last_error = NULL, archive_file = ?,"
                " done_at = ?, cut = ? WHERE path = ?",
                (archive_file, done_at, int(cut or left_out > 0), path),
            )
            self.db.execute(
                "INSERT INTO archive_marks (file, committed_end) VALUES (?, ?)"
                " ON CONFLICT (file) DO UPDATE SET committed_end = MAX(committed_end, excluded.committed_end)",
                (archive_file, archive_end),
            )
            return added

    def mark_archive(self, archive_file: str, archive_end: int) -> None:
        """Record that ``archive_file`` up to ``archive_end`` has been reconciled with this state."""
        with self.db:
            self.db.execute(
                "INSERT INTO archive_marks (file, committed_end) VALUES (?, ?)"
                " ON CONFLICT (file) DO UPDATE SET committed_end = MAX(committed_end, excluded.committed_end)",
                (archive_file, archive_end),
            )

    def set_state(self, path: str, state: str, error: str) -> None:
        """Record a page that failed (``failed``), is gone (``gone``) or may not be fetched (``refused``)."""
        with self.db:
            self.db.execute(
                "UPDATE urls SET state = ?, attempts = attempts + 1, last_error = ? WHERE path = ?",
                (state, error, path),
            )

    def cut_pages(self) -> list[tuple[PageRef, str]]:
        """Done pages whose revealed pages ``max_books`` left out, with the archive file holding each."""
        rows = self.db.execute(
            "SELECT path, kind, tag, start, subject_id, archive_file FROM urls WHERE state = 'done' AND cut = 1"
            " ORDER BY rowid"
        ).fetchall()
        return [(PageRef(*row[:5]), row[5] or "") for row in rows]

    def reopen(self, path: str) -> None:
        """Queue a done page again (its archived copy is gone)."""
        with self.db:
            self.db.execute("UPDATE urls SET state = 'queued', cut = 0 WHERE path = ?", (path,))

    def requeue_failed(self) -> int:
        """Give pages that failed in an earlier run another chance; return how many."""
        with self.db:
            return self.db.execute("UPDATE urls SET state = 'queued' WHERE state = 'failed'").rowcount

    def state_of(self, path: str) -> str | None:
        row = self.db.execute("SELECT state FROM urls WHERE path = ?", (path,)).fetchone()
        return row[0] if row else None

    def page(self, path: str) -> PageRef | None:
        row = self.db.execute("SELECT path, kind, tag, start, subject_id FROM urls WHERE path = ?", (path,)).fetchone()
        return PageRef(*row) if row else None

    def archive_marks(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT file, committed_end FROM archive_marks").fetchall())

    def counts(self) -> dict[str, dict[str, int]]:
        """{kind: {state: n}} over every known page."""
        result: dict[str, dict[str, int]] = {}
        for kind, state, count in self.db.execute("SELECT kind, state, COUNT(*) FROM urls GROUP BY kind, state"):
            result.setdefault(kind, {})[state] = count
        return result

    def total(self, state: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM urls WHERE state = ?", (state,)).fetchone()[0]

    def problems(self, limit: int = 50) -> list[dict[str, str]]:
        """Pages that are failed, gone or refused, with their last error (for the report)."""
        rows = self.db.execute(
            "SELECT path, state, last_error FROM urls WHERE state IN ('failed', 'gone', 'refused')"
            " ORDER BY rowid LIMIT ?",
            (limit,),
        )
        return [{"path": path, "state": state, "error": error or ""} for path, state, error in rows]
