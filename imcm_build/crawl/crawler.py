"""The crawl loop: seeds → listings → subject pages, archived to WARC, state in SQLite, resumable.

``run_crawl(config)`` fetches one page at a time through :class:`PoliteClient`. For every usable page it
(1) works out the pages it reveals (tag index → listings, listing → subject ids and the next page),
(2) appends the response to the WARC archive and fsyncs it (in the archive writer's own process, see
``archive_writer``), then (3) commits "done" plus the revealed pages to the frontier in one transaction.
A run killed between (2) and (3) is repaired by the next run, which completes those pages from the
archive instead of fetching them again. With no delay between
requests (the simulator), (2) and (3) are done for up to GROUP_COMMIT_PAGES pages at once: one fsync,
then their commits in one SQLite transaction; the order, and so the guarantee, is the same.

Seeding: ``--ids-file`` (subject pages only), ``--tags``/``--tags-file`` (their listings), or, when
neither is given, the tag index page ``/tag/``. Douban lists at most 1,000 books per tag (50 pages), so a
book reachable only beyond that cannot be found through listings: give its id in ``--ids-file``.

Exit statuses: 0 complete, 3 blocked by Douban (403, login wall, captcha: state saved, rerun to resume),
4 finished with pages that still failed after retries (rerun to retry them), 130 interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import urllib.robotparser
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tqdm import tqdm

from imcm_build.crawl import parse
from imcm_build.crawl.archive import (
    ARCHIVE_DIR,
    DEFAULT_COMPRESS_LEVEL,
    FILE_RE,
    OUTCOME_OK,
    ArchiveError,
    iter_file_responses,
    iter_responses,
    repair_tail,
)
from imcm_build.crawl.archive_writer import ArchiveWriter, Synced
from imcm_build.crawl.client import (
    DEFAULT_USER_AGENT,
    DOUBAN_BOOK_HOST,
    CrawlBlocked,
    FetchError,
    PermanentError,
    PoliteClient,
    RetryableError,
)
from imcm_build.crawl.frontier import (
    DOUBAN_LISTING_LIMIT,
    LISTING_PAGE_SIZE,
    STATE_FILE,
    Frontier,
    FrontierError,
    PageRef,
    listing_page,
    path_of,
    read_ids_file,
    read_tags_file,
    subject_page,
    tag_index_page,
)
from imcm_build.records import Record, write_records

log = logging.getLogger("imcm_build.crawl")

EXIT_OK, EXIT_BLOCKED, EXIT_INCOMPLETE, EXIT_INTERRUPTED = 0, 3, 4, 130
MIN_POLITE_DELAY = 5.0
COOKIE_ENV = "IMCM_DOUBAN_COOKIE"
REPORT_FILE = "crawl_report.json"
RECORDS_FILE = "records.jsonl"
DEFAULT_BASE_URL = f"https://{DOUBAN_BOOK_HOST}"
# Pages are fsynced and committed one by one when the crawl is paced (any real delay); against a fast
# local server up to GROUP_COMMIT_PAGES are fsynced together (still archive first, then state).
GROUP_COMMIT_PAGES = 32
GROUP_COMMIT_IDLE = 0.05  # seconds: a wait longer than this before the next request → commit now
MAX_PENDING_PAGES = 512  # pages awaiting their commit while the archive writer starts
# A crawl faster than this (the simulator) is CPU-bound: gzip level 1 (ISA-L) costs ~0.07 ms per 100 KB page
# instead of ~0.8-1.3 ms at level 6 (zlib), for files ~10 % (simulator pages) to ~15 % (real Douban pages) larger.
FAST_CRAWL_DELAY = 1.0
FAST_COMPRESS_LEVEL = 1
PROGRESS_REFRESH = 0.5  # seconds between progress-bar updates (its total costs two COUNT queries)
READ_AHEAD = 64  # queued pages read from the frontier at once
EXPECTED_KIND = {"tag_index": "tag_index", "listing": "tag_listing", "subject": "subject"}


class CrawlConfigError(ValueError):
    """A crawl configuration that must not run; the message says which option and why."""


@dataclass
class CrawlConfig:
    out: str
    base_url: str = DEFAULT_BASE_URL
    delay: float = MIN_POLITE_DELAY
    jitter: float = 2.0
    tags: list[str] = field(default_factory=list)
    tags_file: str | None = None
    ids_file: str | None = None
    max_books: int | None = None
    max_pages_per_tag: int | None = None
    user_agent: str = DEFAULT_USER_AGENT
    cookie_file: str | None = None  # the cookie itself is never stored in the config
    archive_max_mb: float = 100.0
    archive_compress_level: int | None = None  # gzip level 0-9; None: 1 for a fast crawl, 6 when paced
    timeout: float = 30.0
    max_retries: int = 5
    backoff_base: float = 2.0
    retry_after_max: float = 600.0
    parse: bool = False
    i_know_what_i_am_doing: bool = False
    progress: bool = True
    summary_every: float = 60.0  # seconds between summary log lines

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def base_host(self) -> str:
        return (urlsplit(self.base_url).hostname or "").lower()

    def compress_level(self) -> int:
        if self.archive_compress_level is not None:
            return self.archive_compress_level
        return FAST_COMPRESS_LEVEL if self.delay < FAST_CRAWL_DELAY else DEFAULT_COMPRESS_LEVEL

    def is_loopback(self) -> bool:
        return parse.is_loopback_host(self.base_host)

    def validate(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            raise CrawlConfigError(f"--base-url {self.base_url!r}: expected scheme://host[:port] with no path")
        if self.delay < 0 or self.jitter < 0:
            raise CrawlConfigError("--delay and --jitter must be >= 0")
        if self.delay < MIN_POLITE_DELAY and not self.is_loopback() and not self.i_know_what_i_am_doing:
            raise CrawlConfigError(
                f"--delay {self.delay:g} is below the polite minimum of {MIN_POLITE_DELAY:g} s for "
                f"{self.base_host}; add --i-know-what-i-am-doing if you have permission to go faster"
            )
        for name in ("max_books", "max_pages_per_tag"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise CrawlConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.archive_max_mb <= 0 or self.timeout <= 0 or self.max_retries < 0:
            raise CrawlConfigError("--archive-max-mb and --timeout must be > 0 and --max-retries >= 0")
        if not 0 <= self.compress_level() <= 9:
            raise CrawlConfigError(f"archive_compress_level must be 0-9, got {self.archive_compress_level}")
        if not self.user_agent.strip():
            raise CrawlConfigError("--user-agent must not be empty")


@dataclass
class CrawlReport:
    status: str  # complete | blocked | incomplete | interrupted
    exit_code: int
    out: str
    pages: dict[str, dict[str, int]]
    fetched_this_run: int = 0
    reconciled_from_archive: int = 0
    repaired_archive_bytes: int = 0
    requests: int = 0
    retries: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    problems: list[dict[str, str]] = field(default_factory=list)
    blocked: dict[str, str] | None = None
    message: str = ""
    seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)
    parse: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """A one-screen summary for the terminal."""
        lines = [f"crawl {self.status} in {self.seconds:.1f} s → {self.out}"]
        for kind, states in sorted(self.pages.items()):
            lines.append(f"  {kind:<10} " + ", ".join(f"{state} {n}" for state, n in sorted(states.items())))
        lines.append(
            f"  this run: {self.fetched_this_run} pages fetched, {self.requests} requests, {self.retries} retries"
            + (f", {self.reconciled_from_archive} completed from the archive" if self.reconciled_from_archive else "")
        )
        if self.errors:
            lines.append("  errors: " + ", ".join(f"{kind} {n}" for kind, n in sorted(self.errors.items())))
        if self.parse:
            lines.append(f"  parsed: {self.parse['records']} records, {self.parse['n_errors']} parse errors")
        if self.message:
            lines.append(self.message)
        return "\n".join(lines)


def load_cookie(config: CrawlConfig) -> str | None:
    """The Cookie header value from ``--cookie-file`` or ``$IMCM_DOUBAN_COOKIE``; never echoed back."""
    if config.cookie_file:
        path = Path(config.cookie_file)
        if not path.is_file():
            raise CrawlConfigError(f"--cookie-file {path}: no such file")
        value = path.read_text(encoding="utf-8").strip()
        source = f"--cookie-file {path}"
    else:
        value = os.environ.get(COOKIE_ENV, "").strip()
        source = f"${COOKIE_ENV}"
    if value.lower().startswith("cookie:"):
        value = value[len("cookie:"):].strip()
    if any(ch in value for ch in "\r\n\0"):
        raise CrawlConfigError(f"{source}: the cookie must be a single line (value not shown)")
    return value or None


def seed_pages(config: CrawlConfig) -> list[PageRef]:
    tags = list(config.tags) + (read_tags_file(config.tags_file) if config.tags_file else [])
    pages = [listing_page(tag) for tag in tags]
    if config.ids_file:
        pages += [subject_page(subject_id) for subject_id in read_ids_file(config.ids_file)]
    return pages or [tag_index_page()]


class PageRejected(Exception):
    """A listing or tag index page the parser could not read."""


def revealed_pages(page: PageRef, body: bytes, url: str, max_pages_per_tag: int | None) -> list[PageRef]:
    """The pages a fetched page leads to: tag index → listings; listing → subjects and its next page."""
    if page.kind == "tag_index":
        tags = parse.parse_tag_index(body, url)
        if isinstance(tags, parse.ParseRejection):
            raise PageRejected(f"{tags.reason}: {tags.detail}")
        return [listing_page(tag) for tag in tags]
    if page.kind != "listing":
        return []
    listing = parse.parse_listing(body, url)
    if isinstance(listing, parse.ParseRejection):
        raise PageRejected(f"{listing.reason}: {listing.detail}")
    try:
        found = [subject_page(subject_id) for subject_id in listing.subject_ids]
    except FrontierError as error:
        raise PageRejected(str(error)) from None
    start = (page.start or 0) + LISTING_PAGE_SIZE
    pages_allowed = max_pages_per_tag is None or start // LISTING_PAGE_SIZE < max_pages_per_tag
    if listing.has_next and listing.subject_ids and start < DOUBAN_LISTING_LIMIT and pages_allowed:
        found.append(listing_page(page.tag or "", start))
    return found


def commit_page(frontier: Frontier, path: str, archive_file: str, archive_end: int, found: list[PageRef],
                done_at: str) -> None:
    """Mark a page done with what it revealed; once max_books is reached, no further listing pages."""
    cut = frontier.subjects_full() and any(page.kind != "subject" for page in found)
    if cut:
        found = [page for page in found if page.kind == "subject"]
    frontier.complete(path, archive_file, archive_end, found, done_at=done_at, cut=cut)


def _archive_paths(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if FILE_RE.match(p.name)) if folder.is_dir() else []


def reconcile(frontier: Frontier, folder: Path, max_pages_per_tag: int | None) -> tuple[int, int]:
    """Complete pages archived as ``ok`` whose commit was lost; cut torn records. Returns (pages, bytes)."""
    completed = repaired = 0
    marks = frontier.archive_marks()
    for path in _archive_paths(folder):
        start = marks.get(path.name, 0)
        if start >= path.stat().st_size:
            continue
        repaired += repair_tail(path, start)
        for response in iter_file_responses(path, start):
            if response.outcome != OUTCOME_OK:
                continue
            requested = path_of(response.requested_url or response.url)
            page = frontier.page(requested)
            if page is None or frontier.state_of(requested) == "done":
                continue
            found = revealed_pages(page, response.body, response.url, max_pages_per_tag)
            commit_page(frontier, requested, path.name, start, found, response.fetched_at)
            completed += 1
            log.info("completed %s from the archive (its state commit was lost)", requested)
        frontier.mark_archive(path.name, path.stat().st_size)
    return completed, repaired


def revisit_cut_pages(frontier: Frontier, folder: Path, max_pages_per_tag: int | None) -> int:
    """When ``max_books`` now leaves room, queue what pages cut short by a lower cap revealed, read from
    their archived copies (a page whose copy is missing is fetched again). Returns the pages revisited."""
    if frontier.subjects_full():
        return 0
    by_file: dict[str, dict[str, PageRef]] = {}
    for page, archive_file in frontier.cut_pages():
        by_file.setdefault(archive_file, {})[page.path] = page
    revisited = 0
    for archive_file, pages in by_file.items():
        path = folder / archive_file
        responses = iter_file_responses(path) if archive_file and path.is_file() else iter(())
        for response in responses:
            if response.outcome != OUTCOME_OK:
                continue
            page = pages.pop(path_of(response.requested_url or response.url), None)
            if page is not None:
                found = revealed_pages(page, response.body, response.url, max_pages_per_tag)
                commit_page(frontier, page.path, archive_file, 0, found, response.fetched_at)
                revisited += 1
        for page in pages.values():
            frontier.reopen(page.path)
            revisited += 1
    return revisited


class _Robots:
    """robots.txt rules for the crawl host, fetched through the polite client and archived."""

    def __init__(self, user_agent: str) -> None:
        self.parser = urllib.robotparser.RobotFileParser()
        self.user_agent = user_agent
        self.loaded = False

    def load(self, client: PoliteClient, archive: ArchiveWriter, base_url: str) -> None:
        url = base_url.rstrip("/") + "/robots.txt"
        try:
            result = client.fetch(url)
        except PermanentError as error:
            if error.kind in ("http_404", "http_410"):
                self.parser.parse([])  # no robots.txt: everything allowed
                self.loaded = True
                return
            raise
        archive.write(result.exchange, OUTCOME_OK)
        self.parser.parse(result.exchange.body.decode("utf-8", errors="replace").splitlines())
        self.loaded = True

    def allows(self, url: str) -> bool:
        """Whether robots.txt lets us fetch ``url`` (while robots.txt itself is fetched, any redirect is)."""
        return not self.loaded or self.parser.can_fetch(self.user_agent, url)

    def crawl_delay(self) -> float | None:
        delay = self.parser.crawl_delay(self.user_agent)
        return float(delay) if delay is not None else None


@dataclass(frozen=True)
class _Pending:
    """A page sent to the archive writer whose "done" waits for the next group commit (and its fsync)."""

    path: str
    write_number: int  # the ArchiveWriter's sequence number of the page's records
    found: list[PageRef]
    done_at: str


class _Crawl:
    def __init__(self, config: CrawlConfig, seeds: list[PageRef], cookie: str | None) -> None:
        self.config = config
        self.seeds = seeds
        self.out = Path(config.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.base_url = config.base_url.rstrip("/")
        self.frontier = Frontier(self.out / STATE_FILE, max_books=config.max_books)
        self.archive = ArchiveWriter(self.out / ARCHIVE_DIR, max_bytes=int(config.archive_max_mb * 1024 * 1024),
                                     compress_level=config.compress_level())
        self.client = PoliteClient(
            allowed_hosts={config.base_host},  # a simulator crawl never follows a redirect to real Douban
            user_agent=config.user_agent,
            cookie=cookie,
            delay=config.delay,
            jitter=config.jitter,
            timeout=config.timeout,
            max_retries=config.max_retries,
            backoff_base=config.backoff_base,
            retry_after_max=config.retry_after_max,
            on_discarded=lambda exchange, outcome: self.archive.write(exchange, outcome),
            classify=parse.classify_page,
            may_fetch=lambda url: self.robots.allows(url),
        )
        self.robots = _Robots(config.user_agent)
        self.fetched = 0
        self.pending: list[_Pending] = []
        self.upcoming: deque[PageRef] = deque()  # read ahead from the frontier, in fetch order
        self.page_errors: Counter = Counter()
        self._last_summary = time.monotonic()

    def close(self) -> None:
        try:
            self.client.close()
            self.archive.close()
        finally:
            self.frontier.close()

    def prepare(self) -> tuple[int, int]:
        reconciled = reconcile(self.frontier, self.out / ARCHIVE_DIR, self.config.max_pages_per_tag)
        self.frontier.add(self.seeds)
        requeued = self.frontier.requeue_failed()
        if requeued:
            log.info("retrying %d page(s) that failed in an earlier run", requeued)
        revisited = revisit_cut_pages(self.frontier, self.out / ARCHIVE_DIR, self.config.max_pages_per_tag)
        if revisited:
            log.info("revisited %d page(s) cut short by an earlier --max-books", revisited)
        self.robots.load(self.client, self.archive, self.base_url)
        robots_delay = self.robots.crawl_delay()
        if robots_delay is not None and robots_delay > self.client.delay:
            log.info("robots.txt asks for Crawl-delay %g s: using it", robots_delay)
            self.client.delay = robots_delay
        return reconciled

    def crawl_one(self, page: PageRef) -> None:
        url = self.base_url + page.path
        if not self.robots.allows(url):
            self.frontier.set_state(page.path, "refused", "robots_disallowed: robots.txt disallows this URL")
            self.page_errors["robots_disallowed"] += 1
            return
        try:
            result = self.client.fetch(url, expect=EXPECTED_KIND[page.kind])
        except (RetryableError, PermanentError) as error:
            state = "failed" if isinstance(error, RetryableError) else "gone"
            if error.kind == "robots_disallowed":  # a redirect to a disallowed page
                state = "refused"
            self.frontier.set_state(page.path, state, f"{error.kind}: {error.detail}")
            return
        exchange = result.exchange
        try:
            found = revealed_pages(page, exchange.body, exchange.url, self.config.max_pages_per_tag)
        except PageRejected as error:
            self.archive.write(exchange, "failed:page_rejected", requested_url=url)
            self.frontier.set_state(page.path, "failed", f"page_rejected: {error}")
            self.page_errors["page_rejected"] += 1
            return
        write_number = self.archive.write(exchange, OUTCOME_OK, requested_url=url)
        self.pending.append(_Pending(page.path, write_number, found, exchange.fetched_at))
        self.fetched += 1
        if found or len(self.pending) >= MAX_PENDING_PAGES or self.client.seconds_until_next() > GROUP_COMMIT_IDLE:
            self.commit_pending()  # revealed pages must reach the frontier now; or there is time to wait
            return
        self._commit(self.archive.poll())  # whatever the writer has confirmed meanwhile
        if len(self.pending) >= GROUP_COMMIT_PAGES and not self.archive.sync_pending and self.archive.ready:
            self.archive.request_sync()  # answered while the next pages are fetched

    def commit_pending(self) -> None:
        """Wait until the writer has fsynced every page sent, then mark them done (archive first)."""
        if self.pending:
            self._commit(self.archive.sync())

    def _commit(self, synced: Synced) -> None:
        """Mark done, in one SQLite transaction, the pending pages the writer has confirmed; raise its error."""
        confirmed = [item for item in self.pending if item.write_number < synced.upto]
        committed = False
        try:
            if confirmed:
                with self.frontier.batch():  # all of the group or, on an error, none
                    for item in confirmed:
                        if item.write_number not in synced.written:
                            break  # its archive write failed: it and the pages after it stay queued
                        archive_file, archive_end = synced.written[item.write_number]
                        commit_page(self.frontier, item.path, archive_file, archive_end, item.found, item.done_at)
            committed = True
        finally:
            if any(item.found for item in confirmed):
                self.upcoming.clear()  # new pages may come first: read the fetch order again
            # after a failed commit nothing later may be committed either: that would move the archive mark
            # past the failed pages, which the next run's reconcile then completes from the archive
            self.pending = [item for item in self.pending if item.write_number >= synced.upto] if committed else []
        if synced.error is not None:
            self.pending.clear()
            raise synced.error

    def errors(self) -> Counter:
        return self.client.stats.errors + self.page_errors

    def log_summary(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_summary < self.config.summary_every:
            return
        self._last_summary = now
        errors = ", ".join(f"{k} {v}" for k, v in sorted(self.errors().items())) or "none"
        log.info(
            "pages done %d, queued %d, errors: %s, current delay %.2f s",
            self.frontier.total("done"), self.frontier.total("queued"), errors, self.client.current_delay,
        )

    def next_page(self) -> PageRef | None:
        """The next page to fetch: the first queued page that is not awaiting its commit. Once ``max_books``
        subject pages are known, listing pages (which could only reveal more) are left queued."""
        if not self.upcoming:
            awaiting = {item.path for item in self.pending}
            kinds = ("subject",) if self.frontier.subjects_full() else None
            ahead = self.frontier.queued(len(awaiting) + READ_AHEAD, kinds)
            self.upcoming.extend(page for page in ahead if page.path not in awaiting)
        return self.upcoming.popleft() if self.upcoming else None

    def known_pages(self) -> int:
        return self.frontier.total("done") + self.frontier.total("queued")

    def loop(self) -> None:
        done = self.frontier.total("done")
        refreshed = time.monotonic()
        with tqdm(total=self.known_pages(), initial=done, unit="page", disable=not self.config.progress,
                  dynamic_ncols=True, mininterval=PROGRESS_REFRESH) as bar:
            while (page := self.next_page()) is not None:
                self.crawl_one(page)
                bar.update(1)
                if not bar.disable and time.monotonic() - refreshed > PROGRESS_REFRESH:
                    bar.total, refreshed = self.known_pages(), time.monotonic()
                self.log_summary()
            self.commit_pending()


def _block_message(out: str, error: CrawlBlocked) -> str:
    return (
        f"STOPPED: Douban refused us ({error.kind}) at {error.url}: {error.detail}.\n"
        f"The crawl state is saved in {out}; nothing already fetched will be fetched again.\n"
        "Wait a few hours (or log in with a browser, then pass --cookie-file), slow down with a larger "
        "--delay, and rerun the same command to resume."
    )


def run_crawl(config: CrawlConfig) -> CrawlReport:
    """Crawl (or resume crawling) into ``config.out``; write ``crawl_report.json`` and return the report."""
    config.validate()
    started = time.monotonic()
    crawl = _Crawl(config, seed_pages(config), load_cookie(config))
    status, exit_code, message, blocked = "complete", EXIT_OK, "", None
    reconciled = repaired = 0
    try:
        reconciled, repaired = crawl.prepare()
        crawl.loop()
        if crawl.frontier.total("failed"):
            status, exit_code = "incomplete", EXIT_INCOMPLETE
            message = "Some pages still failed after retries; rerun the same command to retry them."
        elif left := crawl.frontier.total("queued"):
            message = (f"--max-books {config.max_books} reached: {left} listing page(s) left unfetched; "
                       "rerun with a larger --max-books to go on.")
    except CrawlBlocked as error:
        status, exit_code = "blocked", EXIT_BLOCKED
        blocked = {"kind": error.kind, "url": error.url, "detail": error.detail}
        message = _block_message(config.out, error)
    except RetryableError as error:  # robots.txt could not be fetched
        status, exit_code = "incomplete", EXIT_INCOMPLETE
        message = f"STOPPED: robots.txt unavailable ({error.kind}: {error.detail}); rerun later to resume."
    except FetchError as error:
        status, exit_code = "incomplete", EXIT_INCOMPLETE
        message = f"STOPPED: {error}; rerun later to resume."
    except KeyboardInterrupt:
        status, exit_code = "interrupted", EXIT_INTERRUPTED
        message = "Interrupted: the state is saved; rerun the same command to resume."
    finally:
        try:
            try:
                crawl.commit_pending()
            except KeyboardInterrupt:
                status, exit_code = "interrupted", EXIT_INTERRUPTED
            crawl.log_summary(force=True)
            report = CrawlReport(
                status=status, exit_code=exit_code, out=config.out, pages=crawl.frontier.counts(),
                fetched_this_run=crawl.fetched, reconciled_from_archive=reconciled,
                repaired_archive_bytes=repaired, requests=crawl.client.stats.requests,
                retries=crawl.client.stats.retries, errors=dict(sorted(crawl.errors().items())),
                problems=crawl.frontier.problems(), blocked=blocked, message=message, config=config.to_dict(),
            )
        finally:
            crawl.close()  # also after an archive or commit error, so the state database is closed
    if config.parse:
        summary = parse_archives([Path(config.out) / ARCHIVE_DIR], Path(config.out) / RECORDS_FILE)
        report.parse = summary.to_dict(brief=True)
    report.seconds = round(time.monotonic() - started, 3)
    _write_json(Path(config.out) / REPORT_FILE, report.to_dict())
    return report


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temp = path.with_name(path.name + ".partial")
    temp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    temp.replace(path)


# -- parse: archive → records ---------------------------------------------------------------------------
@dataclass
class ParseSummary:
    inputs: list[str]
    out: str
    responses: int = 0
    records: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # responses that are not subject pages, by kind
    replaced_duplicates: int = 0

    def to_dict(self, brief: bool = False) -> dict[str, Any]:
        data = {
            "inputs": self.inputs, "out": self.out, "responses": self.responses, "records": self.records,
            "n_errors": len(self.errors),
            "errors_by_reason": dict(Counter(error["reason"] for error in self.errors).most_common()),
            "skipped": dict(sorted(self.skipped.items())), "replaced_duplicates": self.replaced_duplicates,
        }
        if not brief:
            data["errors"] = self.errors
        return data


def _skip_kind(url: str, outcome: str, status: int) -> str | None:
    """Why a response is not parsed as a book (None when it is a subject page to parse)."""
    if outcome != OUTCOME_OK:
        return "not_ok_response"
    if status != 200:
        return f"http_{status}"
    if parse.subject_id_from_url(url) is not None:
        return None
    path = urlsplit(url).path
    if path == "/robots.txt":
        return "robots"
    if path == "/tag/":
        return "tag_index"
    return "tag_listing" if path.startswith("/tag/") else "other_page"


def parse_archives(inputs: list[str | Path], out: str | Path) -> ParseSummary:
    """Parse every ``ok`` subject page of the archives into records JSONL (``out``) and a report.

    Later responses for the same subject id replace earlier ones (a recrawl); the report
    (``<out>.report.json``) lists each page the parser rejected with its URL and reason.
    """
    out = Path(out)
    summary = ParseSummary(inputs=[str(p) for p in inputs], out=str(out))
    records: dict[str, Record] = {}
    for response in iter_responses(inputs):
        summary.responses += 1
        skip = _skip_kind(response.url, response.outcome, response.status)
        if skip is not None:
            summary.skipped[skip] += 1
            continue
        result = parse.parse_subject(response.body, response.url, fetched_at=response.fetched_at)
        if isinstance(result, parse.ParseRejection):
            summary.errors.append({"url": result.url, "reason": result.reason, "detail": result.detail})
            continue
        if result.id in records:
            summary.replaced_duplicates += 1
        records[result.id] = result
    summary.records = write_records(records.values(), out)
    _write_json(out.with_name(out.name + ".report.json"), summary.to_dict())
    return summary


__all__ = [
    "ArchiveError", "CrawlConfig", "CrawlConfigError", "CrawlReport", "ParseSummary", "load_cookie",
    "parse_archives", "reconcile", "revealed_pages", "run_crawl",
]
