"""Frontier: seeding, de-duplication, max-books, ordering, atomic completion, persistence."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from imcm_build.crawl.frontier import (
    Frontier,
    FrontierError,
    listing_page,
    path_of,
    read_ids_file,
    read_tags_file,
    subject_page,
    tag_index_page,
    tag_of_listing_path,
)


def test_listing_paths_quote_tags_and_round_trip() -> None:
    page = listing_page("编程 & C++/Linux", start=40)
    assert page.path == "/tag/%E7%BC%96%E7%A8%8B%20%26%20C%2B%2B%2FLinux?start=40&type=T"
    assert tag_of_listing_path(page.path) == "编程 & C++/Linux"
    assert path_of("http://127.0.0.1:8080" + page.path) == page.path


@pytest.mark.parametrize("bad", ["12a", "", "0123", "../1", "1/2", "99999999999999"])
def test_subject_ids_must_be_digits(bad: str) -> None:
    with pytest.raises(FrontierError):
        subject_page(bad)


def test_seed_files_name_file_and_line_on_bad_input(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("# books\n1000121\n\nhttps://book.douban.com/subject/26382433/\n  2567698 \n", encoding="utf-8")
    assert read_ids_file(ids) == ["1000121", "26382433", "2567698"]
    ids.write_text("1000121\nbook 12\n", encoding="utf-8")
    with pytest.raises(FrontierError, match=r"ids.txt:2: not a subject id"):
        read_ids_file(ids)
    tags = tmp_path / "tags.txt"
    tags.write_text("小说\n# comment\n\n科幻\n", encoding="utf-8")
    assert read_tags_file(tags) == ["小说", "科幻"]
    with pytest.raises(FrontierError, match="no such file"):
        read_tags_file(tmp_path / "missing.txt")


def test_pages_are_deduplicated_and_fetched_index_subjects_then_listings(tmp_path: Path) -> None:
    with Frontier(tmp_path / "state.sqlite3") as frontier:
        assert frontier.add([listing_page("小说"), tag_index_page(), subject_page("7"), subject_page("7")]) == 3
        assert frontier.add([listing_page("小说"), subject_page("7")]) == 0
        assert frontier.next_queued() == tag_index_page()
        frontier.complete("/tag/", "crawl-00000.warc.gz", 100, [listing_page("科幻")])
        assert frontier.next_queued() == subject_page("7")
        frontier.complete("/subject/7/", "crawl-00000.warc.gz", 200)
        assert frontier.next_queued() == listing_page("小说")
        assert frontier.counts() == {"tag_index": {"done": 1}, "subject": {"done": 1}, "listing": {"queued": 2}}
        assert frontier.archive_marks() == {"crawl-00000.warc.gz": 200}


def test_max_books_caps_subject_pages_across_runs(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    with Frontier(state, max_books=3) as frontier:
        frontier.add([listing_page("小说")])
        found = [subject_page(str(n)) for n in range(1, 6)]
        assert frontier.complete(listing_page("小说").path, "crawl-00000.warc.gz", 10, found) == 3
        assert frontier.subjects_full()
    with Frontier(state, max_books=4) as frontier:
        assert frontier.add([subject_page("9"), subject_page("10")]) == 1
        assert frontier.counts()["subject"] == {"queued": 4}


def test_failed_pages_are_requeued_gone_and_refused_are_not(tmp_path: Path) -> None:
    with Frontier(tmp_path / "state.sqlite3") as frontier:
        frontier.add([subject_page("1"), subject_page("2"), subject_page("3")])
        frontier.set_state("/subject/1/", "failed", "http_503: HTTP 503")
        frontier.set_state("/subject/2/", "gone", "http_404: HTTP 404")
        frontier.set_state("/subject/3/", "refused", "robots_disallowed")
        assert [p["state"] for p in frontier.problems()] == ["failed", "gone", "refused"]
        assert frontier.requeue_failed() == 1
        assert frontier.state_of("/subject/1/") == "queued" and frontier.state_of("/subject/2/") == "gone"


def test_state_is_wal_and_survives_reopening(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    with Frontier(state) as frontier:
        frontier.add([subject_page("1")])
        frontier.complete("/subject/1/", "crawl-00000.warc.gz", 512, [subject_page("2")])
    with sqlite3.connect(state) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT path, state FROM urls ORDER BY path").fetchall() == [
            ("/subject/1/", "done"), ("/subject/2/", "queued")]


def test_completion_is_all_or_nothing(tmp_path: Path) -> None:
    with Frontier(tmp_path / "state.sqlite3") as frontier:
        frontier.add([listing_page("小说")])
        path = listing_page("小说").path

        class Broken:
            path, kind, tag, start, subject_id = "/subject/x/", "no-such-kind", None, None, None

        with pytest.raises((sqlite3.IntegrityError, ValueError)):
            frontier.complete(path, "crawl-00000.warc.gz", 99, [subject_page("1"), Broken()])
        assert frontier.state_of(path) == "queued"
        assert frontier.state_of("/subject/1/") is None and frontier.archive_marks() == {}


def test_a_batch_commits_its_completions_together_or_not_at_all(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    with Frontier(state) as frontier:
        frontier.add([subject_page(str(n)) for n in range(1, 6)])
        with frontier.batch():
            frontier.complete("/subject/1/", "crawl-00000.warc.gz", 100)
            frontier.complete("/subject/2/", "crawl-00000.warc.gz", 200)
            with sqlite3.connect(state) as reader:  # another connection sees nothing before the batch ends
                assert reader.execute("SELECT COUNT(*) FROM urls WHERE state = 'done'").fetchone() == (0,)
        assert frontier.counts()["subject"] == {"done": 2, "queued": 3}
        with pytest.raises(KeyboardInterrupt), frontier.batch():
            frontier.complete("/subject/3/", "crawl-00000.warc.gz", 300)
            raise KeyboardInterrupt  # killed halfway through the group
        assert frontier.state_of("/subject/3/") == "queued"
        assert frontier.archive_marks() == {"crawl-00000.warc.gz": 200}
        frontier.complete("/subject/3/", "crawl-00000.warc.gz", 300)  # outside a batch: its own commit
    with Frontier(state) as reopened:
        assert reopened.counts()["subject"] == {"done": 3, "queued": 2}
