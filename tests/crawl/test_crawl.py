"""The crawler against the local Douban simulator: every fault kind, resume, SIGKILL, cookie, robots."""

from __future__ import annotations

import errno
import gzip
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from imcm_build.crawl import archive_writer, crawler
from imcm_build.crawl.archive import complete_length, iter_responses
from imcm_build.crawl.cli import main as crawl_cli
from imcm_build.crawl.crawler import CrawlConfig, CrawlConfigError, CrawlReport, run_crawl
from imcm_build.crawl.frontier import Frontier, listing_page, path_of
from imcm_build.crawl.parse import subject_id_from_url
from imcm_build.demo_corpus import generate_demo_records
from imcm_build.records import Record, read_records
from imcm_build.simulator import DoubanSimulator
from tests.crawl.test_client import Reply, ScriptedServer

SEED_TAGS = ("历史", "科幻")


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return generate_demo_records(60, seed=1)


@pytest.fixture(scope="module")
def expected_ids(records: list[Record]) -> set[str]:
    """Books a crawl seeded with SEED_TAGS must reach: those carrying one of the tags (< 1000 per tag)."""
    ids = {record.id for record in records if set(record.tags) & set(SEED_TAGS)}
    assert 25 <= len(ids) <= 60
    return ids


def crawl(out: Path, simulator: DoubanSimulator, **options: object) -> CrawlReport:
    settings = {"delay": 0.0, "jitter": 0.0, "progress": False, "backoff_base": 0.01, "tags": list(SEED_TAGS),
                "timeout": 5.0, **options}
    return run_crawl(CrawlConfig(out=str(out), base_url=simulator.base_url, **settings))


def ok_subject_responses(out: Path) -> Counter:
    """How many times each subject page was archived as the response that completed it."""
    counts: Counter = Counter()
    for response in iter_responses([out]):
        if response.outcome == "ok" and "/subject/" in response.url:
            assert response.status == 200
            counts[subject_id_from_url(response.url)] += 1
    return counts


def assert_exactly_once(out: Path, expected_ids: set[str]) -> None:
    counts = ok_subject_responses(out)
    assert set(counts) == expected_ids
    assert set(counts.values()) == {1}


RETRIED = [
    ("500_every=4", "http_500", "retry:http_500"),
    ("503_every=4", "http_503", "retry:http_503"),
    ("429_every=12", "http_429", "retry:http_429"),
    ("truncate_every=4", "truncated", "retry:truncated"),
    ("truncate_every=4,truncate_mode=close", "truncated", None),
    ("malformed_every=4", "truncated", "retry:truncated"),
    ("offsite_every=4", "offsite_redirect", "refused:offsite_redirect"),
    ("slow_every=9,slow_seconds=1.2", "timeout", None),
]


@pytest.mark.parametrize(("faults", "error_kind", "archived_outcome"), RETRIED)
def test_transient_faults_are_retried_and_resume_fetches_nothing_twice(
    tmp_path: Path, records: list[Record], expected_ids: set[str], faults: str, error_kind: str,
    archived_outcome: str | None,
) -> None:
    with DoubanSimulator(records, faults=faults) as simulator:
        report = crawl(tmp_path, simulator, timeout=0.6)
    assert (report.status, report.exit_code) == ("complete", 0)
    assert report.errors.get(error_kind, 0) >= 2 and report.retries == sum(report.errors.values())
    outcomes = Counter(response.outcome for response in iter_responses([tmp_path]))
    if archived_outcome is not None:
        assert outcomes[archived_outcome] == report.errors[error_kind]
    assert not any("evil.example.com" in response.url for response in iter_responses([tmp_path]))
    assert_exactly_once(tmp_path, expected_ids)
    with DoubanSimulator(records) as simulator:
        again = crawl(tmp_path, simulator)
        assert [path for path, _ in simulator.request_log] == ["/robots.txt"]
    assert again.status == "complete" and again.fetched_this_run == 0
    assert_exactly_once(tmp_path, expected_ids)


@pytest.mark.parametrize(
    ("faults", "kinds", "blocked_status"),
    [
        ("403_after=12", {"http_403"}, 403),
        ("login_after=12", {"login_wall"}, 302),
        ("captcha_after=12", {"captcha"}, 200),  # titled 禁止访问 like Douban's IP block, but it has the form
    ],
)
def test_blocks_stop_cleanly_and_a_resume_completes(
    tmp_path: Path, records: list[Record], expected_ids: set[str], faults: str, kinds: set[str],
    blocked_status: int,
) -> None:
    with DoubanSimulator(records, faults=faults) as simulator:
        report = crawl(tmp_path, simulator)
        log = simulator.request_log
    assert (report.status, report.exit_code) == ("blocked", crawler.EXIT_BLOCKED)
    assert report.blocked["kind"] in kinds and "rerun the same command" in report.message
    assert log[-1][1] == blocked_status and [status for _, status in log].count(blocked_status) >= 1
    assert len(log) == 1 + 12 + 1  # robots.txt, 12 good pages, the block, and no retry of it
    assert not any(path.startswith("/sec/") for path, _ in log)
    saved = json.loads((tmp_path / crawler.REPORT_FILE).read_text(encoding="utf-8"))
    assert saved["status"] == "blocked" and saved["blocked"]["kind"] in kinds
    done_before = sum(states.get("done", 0) for states in report.pages.values())
    assert done_before == 12
    with DoubanSimulator(records) as simulator:  # a fresh simulator, on another port, without the fault
        resumed = crawl(tmp_path, simulator)
        refetched = [path for path, _ in simulator.request_log if path != "/robots.txt"]
    assert (resumed.status, resumed.exit_code) == ("complete", 0)
    assert len(refetched) == len(set(refetched)) == resumed.fetched_this_run
    assert_exactly_once(tmp_path, expected_ids)


def test_clear_block_then_resume_on_the_same_simulator(
    tmp_path: Path, records: list[Record], expected_ids: set[str]
) -> None:
    with DoubanSimulator(records, faults="403_after=30") as simulator:
        assert crawl(tmp_path, simulator).status == "blocked"
        simulator.clear_block()
        resumed = crawl(tmp_path, simulator)
    assert resumed.status == "complete"
    assert_exactly_once(tmp_path, expected_ids)


@pytest.mark.parametrize("faults", ["", "redirect_every=2"])
def test_a_lost_state_commit_is_recovered_from_the_archive(
    tmp_path: Path, records: list[Record], expected_ids: set[str], monkeypatch: pytest.MonkeyPatch, faults: str
) -> None:
    """Killed after the WARC record was fsynced but before the state commit: no refetch, no loss; also when
    pages were redirected (the archive keeps the address asked for beside the one that answered)."""
    real_complete = Frontier.complete
    calls = {"n": 0}

    def complete_then_die(self: Frontier, path: str, *args: object, **kwargs: object) -> int:
        calls["n"] += 1
        if calls["n"] == 6:
            calls["lost"] = path
            raise KeyboardInterrupt  # stands in for SIGKILL between archive write and commit
        return real_complete(self, path, *args, **kwargs)

    monkeypatch.setattr(Frontier, "complete", complete_then_die)
    with DoubanSimulator(records, faults=faults) as simulator:
        assert crawl(tmp_path, simulator).status == "interrupted"
    monkeypatch.setattr(Frontier, "complete", real_complete)
    archived = {path_of(r.requested_url): r.url for r in iter_responses([tmp_path]) if r.outcome == "ok"}
    with Frontier(tmp_path / "state.sqlite3") as frontier:
        assert frontier.state_of(calls["lost"]) == "queued"
        lost = {path: url for path, url in archived.items() if frontier.state_of(path) == "queued"}
    if faults:  # redirected pages are archived under the address asked for, and some lost their commit
        assert any(url.endswith("redirected=1") for url in lost.values())
    with DoubanSimulator(records) as simulator:
        resumed = crawl(tmp_path, simulator)
        refetched = {path for path, _ in simulator.request_log}
    # the lost page and the rest of its group commit are completed from the archive, not refetched
    assert resumed.reconciled_from_archive == len(lost) >= 1 and not set(lost) & refetched
    assert_exactly_once(tmp_path, expected_ids)


def test_a_torn_warc_tail_is_cut_and_its_page_fetched_again(
    tmp_path: Path, records: list[Record], expected_ids: set[str]
) -> None:
    with DoubanSimulator(records) as simulator:
        crawl(tmp_path, simulator, max_books=5)
    archive = sorted((tmp_path / "archive").iterdir())[-1]
    whole = archive.read_bytes()
    archive.write_bytes(whole + whole[:200])  # the start of a record that was never finished
    with DoubanSimulator(records) as simulator:
        resumed = crawl(tmp_path, simulator)
    assert resumed.repaired_archive_bytes == 200 and archive.read_bytes() == whole
    assert_exactly_once(tmp_path, expected_ids)


def test_ids_file_recrawls_subject_pages_only(tmp_path: Path, records: list[Record]) -> None:
    wanted = [records[3].id, records[7].id, records[3].id, "999999999"]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(wanted) + "\n", encoding="utf-8")
    with DoubanSimulator(records) as simulator:
        report = crawl(tmp_path / "out", simulator, tags=[], ids_file=str(ids_file))
        paths = [path for path, _ in simulator.request_log]
        missing_url = f"{simulator.base_url}/subject/999999999/"
    assert paths == ["/robots.txt", f"/subject/{records[3].id}/", f"/subject/{records[7].id}/", "/subject/999999999/"]
    assert report.pages["subject"] == {"done": 2, "gone": 1}
    assert report.problems == [
        {"path": "/subject/999999999/", "state": "gone", "error": f"http_404: HTTP 404 from {missing_url}"}]


def test_default_seed_is_the_tag_index_and_max_books_caps_subjects(tmp_path: Path, records: list[Record]) -> None:
    with DoubanSimulator(records) as simulator:
        report = crawl(tmp_path, simulator, tags=[], max_books=7)
        paths = [path for path, _ in simulator.request_log]
    assert paths[:2] == ["/robots.txt", "/tag/"]
    assert report.pages["subject"] == {"done": 7}
    assert sum(path.startswith("/subject/") for path in paths) == 7
    # once 7 books are known, the other tags' listing pages are not fetched (they could only reveal more)
    listings = [path for path in paths if path.startswith("/tag/") and path != "/tag/"]
    assert len(listings) == 1 and report.pages["listing"]["queued"] >= 5
    assert report.status == "complete" and "--max-books 7 reached" in report.message
    with DoubanSimulator(records) as simulator:  # a larger cap goes on from there
        more = crawl(tmp_path, simulator, tags=[], max_books=30)
        again = [path for path, _ in simulator.request_log]
    # the listing page cut short is read again from the archive, not fetched again
    assert more.pages["subject"] == {"done": 30} and not set(again) & set(paths) - {"/robots.txt"}


def test_a_page_cut_by_max_books_whose_archive_is_gone_is_fetched_again(tmp_path: Path, records: list[Record]) -> None:
    with DoubanSimulator(records) as simulator:
        crawl(tmp_path, simulator, tags=["科幻"], max_books=5)
    listing = listing_page("科幻").path
    for archive_file in (tmp_path / "archive").glob("*.warc.gz"):
        archive_file.unlink()
    with DoubanSimulator(records) as simulator:
        report = crawl(tmp_path, simulator, tags=["科幻"], max_books=10)
        paths = [path for path, _ in simulator.request_log]
    assert paths[:2] == ["/robots.txt", listing] and report.pages["subject"] == {"done": 10}


def test_a_redirect_to_real_douban_is_refused_during_a_simulator_crawl(tmp_path: Path) -> None:
    """Only the --base-url host is fetched: a local server cannot send a zero-delay crawl to Douban."""
    script = {"/robots.txt": [Reply(404, b"")],
              "/subject/1/": [Reply(302, b"", {"Location": "https://book.douban.com/subject/1/"})]}
    server = ScriptedServer(script)
    server.thread.start()
    try:
        ids_file = tmp_path / "ids.txt"
        ids_file.write_text("1\n", encoding="utf-8")
        report = run_crawl(CrawlConfig(out=str(tmp_path / "out"), base_url=server.base_url, delay=0.0, jitter=0.0,
                                       ids_file=str(ids_file), progress=False, max_retries=1, backoff_base=0.01))
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    assert report.status == "incomplete" and report.errors == {"http_404": 1, "offsite_redirect": 2}  # robots 404
    assert report.problems[0]["error"].startswith("offsite_redirect: refused redirect to off-site https://book")


def test_max_pages_per_tag(tmp_path: Path, records: list[Record]) -> None:
    with DoubanSimulator(records) as simulator:
        report = crawl(tmp_path, simulator, tags=["小说"], max_pages_per_tag=1)
    assert report.pages == {"listing": {"done": 1}, "subject": {"done": 20}}


def test_robots_disallow_is_honoured(tmp_path: Path, records: list[Record]) -> None:
    # the simulator's robots.txt, like Douban's, disallows everything to "Wandoujia Spider"
    with DoubanSimulator(records) as simulator:
        report = crawl(tmp_path, simulator, user_agent="Wandoujia Spider/2.0")
        paths = [path for path, _ in simulator.request_log]
    assert paths == ["/robots.txt"]
    assert report.pages == {"listing": {"refused": 2}} and report.errors == {"robots_disallowed": 2}


def test_cookie_is_sent_but_never_written_or_logged(
    tmp_path: Path, records: list[Record], capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture,
) -> None:
    secret_bid, secret_session, secret_ck = "SeCrEtBid42", "SeCrEtSession77", "Xk9q"
    cookie_file = tmp_path / "cookie.txt"
    cookie_file.write_text(f'Cookie: bid={secret_bid}; dbcl2="1234:{secret_session}"; ck={secret_ck}\n',
                           encoding="utf-8")
    out = tmp_path / "out"
    caplog.set_level(logging.DEBUG)
    with DoubanSimulator(records, require_cookie=secret_bid) as simulator:  # 403 without the cookie
        status = crawl_cli(["crawl", "--out", str(out), "--base-url", simulator.base_url, "--delay", "0",
                            "--jitter", "0", "--tags", "科幻", "--cookie-file", str(cookie_file), "--no-progress",
                            "--parse"])
    assert status == 0
    assert len(list(read_records([out / "records.jsonl"]))) == 17
    captured = capsys.readouterr()
    texts = [captured.out, captured.err, caplog.text]
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            texts.append((gzip.decompress(data) if path.name.endswith(".gz") else data).decode("utf-8", "replace"))
    assert len(texts) >= 7  # output, log, WARC, state (+ WAL), crawl report, records, parse report
    for text in texts:
        assert secret_bid not in text and secret_session not in text and f"ck={secret_ck}" not in text
    # Douban repeats the visitor's bid and ck in its pages (the simulator does too): they are archived redacted
    archived = [response.body for response in iter_responses([out]) if "/subject/" in response.url]
    assert archived and all(b"browserId: 'REDACTED'" in body and b"?ck=REDACTED" in body for body in archived)


def test_delay_below_the_minimum_needs_the_flag_except_on_loopback(tmp_path: Path) -> None:
    with pytest.raises(CrawlConfigError, match="--i-know-what-i-am-doing"):
        CrawlConfig(out=str(tmp_path), delay=1.0).validate()
    CrawlConfig(out=str(tmp_path), delay=1.0, i_know_what_i_am_doing=True).validate()
    CrawlConfig(out=str(tmp_path), base_url="http://127.0.0.1:8000", delay=0.0).validate()
    with pytest.raises(CrawlConfigError, match="base-url"):
        CrawlConfig(out=str(tmp_path), base_url="ftp://book.douban.com/x").validate()


def _done_pages(state: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM urls WHERE state = 'done'").fetchone()[0]
    except sqlite3.Error:
        return 0


def _crawl_until_ten_pages_are_done(out: Path, simulator: DoubanSimulator, delay: str, jitter: str,
                                    **popen: Any) -> tuple[list[str], subprocess.Popen]:
    """Start `imcm-build crawl` in a subprocess and return once it has marked 10 pages done."""
    command = [sys.executable, "-m", "imcm_build.cli", "crawl", "--out", str(out), "--base-url",
               simulator.base_url, "--delay", delay, "--jitter", jitter, "--tags", *SEED_TAGS, "--no-progress"]
    process = subprocess.Popen(command, env={**os.environ, "PYTHONUNBUFFERED": "1"}, **popen)
    deadline = time.monotonic() + 30
    while _done_pages(out / "state.sqlite3") < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    return command, process


def test_sigkill_mid_crawl_then_resume_loses_nothing_and_fetches_nothing_twice(
    tmp_path: Path, records: list[Record], expected_ids: set[str]
) -> None:
    out = tmp_path / "out"
    with DoubanSimulator(records) as simulator:
        command, process = _crawl_until_ten_pages_are_done(out, simulator, delay="0.05", jitter="0.02",
                                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
        first_requests = [path for path, status in simulator.request_log if status == 200]
    assert 10 <= _done_pages(out / "state.sqlite3") < len(expected_ids)
    with DoubanSimulator(records) as simulator:
        resumed = subprocess.run([*command[:7], simulator.base_url, *command[8:], "--parse"],
                                 capture_output=True, text=True, timeout=60)
        second_requests = [path for path, _ in simulator.request_log]
    assert resumed.returncode == 0, resumed.stderr
    assert "crawl complete" in resumed.stdout
    pages_first = {p for p in first_requests if p != "/robots.txt"}
    pages_second = {p for p in second_requests if p != "/robots.txt"}
    # at most the page in flight when killed (fetched, not yet archived) is fetched again
    assert len(pages_first & pages_second) <= 1
    assert_exactly_once(out, expected_ids)
    parsed = [item for item in read_records([out / "records.jsonl"])]
    assert {record.id for record in parsed} == expected_ids


def test_ctrl_c_mid_crawl_archives_what_was_fetched_and_resume_completes(
    tmp_path: Path, records: list[Record], expected_ids: set[str]
) -> None:
    out = tmp_path / "out"
    with DoubanSimulator(records) as simulator:
        _, process = _crawl_until_ten_pages_are_done(out, simulator, delay="0.02", jitter="0",
                                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=30)
        first = {path for path, status in simulator.request_log if status == 200} - {"/robots.txt"}
    assert process.returncode == 130, stdout
    report = json.loads((out / "crawl_report.json").read_text(encoding="utf-8"))
    assert report["status"] == "interrupted"
    # the writer process finished and let go of the folder; every page fetched is archived and marked done
    archive_writer.hold_folder_lock(out / "archive", wait=0).close()
    archived = {path_of(r.requested_url or r.url) for r in iter_responses([out]) if r.outcome == "ok"}
    assert len(first - archived) <= 1  # at most the page in flight when Ctrl-C came
    with Frontier(out / "state.sqlite3") as frontier:
        assert {p for p in archived - {"/robots.txt"} if frontier.state_of(p) != "done"} == set()
    with DoubanSimulator(records) as simulator:
        resumed = crawl(out, simulator)
        again = {path for path, _ in simulator.request_log} - {"/robots.txt"}
    assert resumed.status == "complete" and len(first & again) <= 1
    assert_exactly_once(out, expected_ids)


def test_a_failing_archive_stops_the_crawl_and_nothing_unarchived_is_marked_done(
    tmp_path: Path, records: list[Record], expected_ids: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the writer process may write 250 kB (about 15 pages): then the OS refuses (EFBIG) in the middle of a record
    limit = 250_000
    real_popen = subprocess.Popen

    def popen_with_a_file_size_limit(*args: object, **kwargs: object) -> subprocess.Popen:
        return real_popen(*args, **kwargs, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))

    monkeypatch.setattr(archive_writer.subprocess, "Popen", popen_with_a_file_size_limit)
    with DoubanSimulator(records) as simulator:
        with pytest.raises(OSError) as raised:
            crawl(tmp_path, simulator)
        fetched = {path for path, _ in simulator.request_log} - {"/robots.txt"}
    monkeypatch.setattr(archive_writer.subprocess, "Popen", real_popen)
    assert raised.value.errno == errno.EFBIG
    archive_file = tmp_path / "archive" / "crawl-00000.warc.gz"
    assert archive_file.stat().st_size == limit  # the last record is torn
    intact = tmp_path / "intact"
    intact.mkdir()
    (intact / archive_file.name).write_bytes(archive_file.read_bytes()[: complete_length(archive_file)])
    archived = {path_of(r.requested_url or r.url) for r in iter_responses([intact]) if r.outcome == "ok"}
    archived -= {"/robots.txt"}
    with Frontier(tmp_path / "state.sqlite3") as frontier:
        done = {path for path, state in frontier.db.execute("SELECT path, state FROM urls") if state == "done"}
        not_archived = fetched - archived
        assert not_archived and all(frontier.state_of(path) == "queued" for path in not_archived)
    # the pages written before the failure were fsynced and committed on the way out; nothing else was
    assert len(done) >= 8 and done == archived
    with DoubanSimulator(records) as simulator:
        resumed = crawl(tmp_path, simulator)
        refetched = {path for path, _ in simulator.request_log}
    assert resumed.status == "complete" and resumed.repaired_archive_bytes > 0
    assert not_archived <= refetched and not refetched & done
    assert_exactly_once(tmp_path, expected_ids)


def test_archive_compression_follows_the_pace_unless_set(tmp_path: Path, records: list[Record]) -> None:
    assert CrawlConfig(out=str(tmp_path), delay=0.0).compress_level() == 1
    assert CrawlConfig(out=str(tmp_path)).compress_level() == 6  # the polite 5 s delay leaves time for it
    assert CrawlConfig(out=str(tmp_path), delay=0.0, archive_compress_level=9).compress_level() == 9
    with pytest.raises(CrawlConfigError, match="archive_compress_level"):
        CrawlConfig(out=str(tmp_path), archive_compress_level=11).validate()
    sizes = {}
    with DoubanSimulator(records) as simulator:
        for name, level in (("fast", None), ("best", 9)):
            crawl(tmp_path / name, simulator, tags=["科幻"], max_books=5, archive_compress_level=level)
            sizes[name] = (tmp_path / name / "archive" / "crawl-00000.warc.gz").stat().st_size
            assert len(ok_subject_responses(tmp_path / name)) == 5
    assert sizes["best"] < 0.9 * sizes["fast"]
