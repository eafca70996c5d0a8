"""Page classification: the byte-level fast path for subject pages never disagrees with the full parse.

The crawler classifies every page it fetches; `classify_page` recognises a plain subject page from its bytes
and parses only the rest. Each test compares against the full classification (`_classify` on the parsed
page), on the real saved pages, on every kind of page the simulator serves, and on pages altered to carry a
block marker in places the fast path must notice.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imcm_build.crawl import parse
from imcm_build.crawl.parse import PageKind, classify_page
from imcm_build.demo_corpus import generate_demo_records
from imcm_build.simulator.render import SiteRenderer, error_page
from tests.conftest import shared_path

SUBJECT_URL = "https://book.douban.com/subject/{}/"
SIM = "http://127.0.0.1:8000"
REAL_SUBJECT_FILES = {
    "boofilsic/https___book_douban_com_subject_1089243_.html": "1089243",
    "boofilsic/https___book_douban_com_subject_35902899_.html": "35902899",
    "mikihau/douban-book_27119879.html": "27119879",
    "nevertoomanybooks/douban_9787532190294_25930607.html": "25930607",
    "nevertoomanybooks/douban_9787532190294_36897178.html": "36897178",
    "nevertoomanybooks/douban_9787536692930_36874304.html": "36874304",
}
CAPTCHA_FORM = (
    b'<form method="post" action="/sec/captcha"><img id="captcha_image" src="/c.jpg">'
    b'<input name="captcha-solution"></form>'
)


def full_classification(body: bytes, url: str) -> PageKind:
    """What the lxml-based classifier says, without the fast path."""
    page = parse._load(body, url)
    return PageKind.OTHER if isinstance(page, parse.ParseRejection) else parse._classify(page)


def assert_agrees(body: bytes, url: str) -> PageKind:
    kind = classify_page(body, url)
    assert kind is full_classification(body, url)
    return kind


def real_subject_page(relative: str) -> tuple[bytes, str]:
    return shared_path(f"douban-html/{relative}").read_bytes(), SUBJECT_URL.format(REAL_SUBJECT_FILES[relative])


@pytest.fixture(scope="module")
def site() -> SiteRenderer:
    return SiteRenderer(generate_demo_records(12, seed=3), SIM, era="mixed")


@pytest.mark.parametrize("relative", sorted(REAL_SUBJECT_FILES))
def test_real_subject_pages_take_the_fast_path(relative: str) -> None:
    body, url = real_subject_page(relative)
    assert parse._is_plain_subject_page(body, url)
    assert assert_agrees(body, url) is PageKind.SUBJECT


def test_real_search_and_listing_pages_are_parsed_and_classified_as_before() -> None:
    folder = shared_path("douban-html")
    search = sorted(Path(folder, "nevertoomanybooks").glob("douban_multi_*"))
    assert len(search) == 2
    for path in search:
        body = path.read_bytes()
        url = "https://search.douban.com/book/subject_search?search_text=9787532190294&cat=1001"
        assert not parse._is_plain_subject_page(body, url)
        assert assert_agrees(body, url) is PageKind.SEARCH
    listing = Path(folder, "tag-listing/tag_biancheng_2021.html").read_bytes()
    listing_url = "https://book.douban.com/tag/%E7%BC%96%E7%A8%8B?start=0&type=T"
    assert assert_agrees(listing, listing_url) is PageKind.TAG_LISTING


def test_every_simulator_page_kind(site: SiteRenderer) -> None:
    records = list(site.by_id.values())
    subject_url = f"{SIM}/subject/{records[0].id}/"
    for record in records:  # both eras: "mixed" picks the era by the parity of the id
        url = f"{SIM}/subject/{record.id}/"
        assert parse._is_plain_subject_page(site.subject_page(record), url)
        assert assert_agrees(site.subject_page(record), url) is PageKind.SUBJECT
    tag = records[0].tags[0]
    cases = [
        (site.captcha_page(subject_url, captcha_id="sim1"), subject_url, PageKind.CAPTCHA),
        (site.login_wall_page(subject_url), f"{SIM}/sec/b", PageKind.LOGIN_WALL),
        (site.works_page(records[0]), f"{SIM}/works/{records[0].id}", PageKind.WORKS),
        (site.search_page("三体"), f"{SIM}/subject_search?search_text=x", PageKind.SEARCH),
        (site.tag_index_page(), f"{SIM}/tag/", PageKind.TAG_INDEX),
        (site.listing_page(tag, 0), f"{SIM}/tag/{tag}?start=0&type=T", PageKind.TAG_LISTING),
        (error_page("页面不存在", "你要的东西不在这"), subject_url, PageKind.OTHER),
    ]
    for body, url, expected in cases:
        assert assert_agrees(body, url) is expected, url


def test_the_simulators_captcha_page_is_a_captcha_not_a_login_wall(site: SiteRenderer) -> None:
    url = f"{SIM}/subject/1/"
    body = site.captcha_page(url, captcha_id="x")
    assert parse.BLOCKED_TITLE.encode() in body  # titled like Douban's IP block page
    assert classify_page(body, url) is PageKind.CAPTCHA


@pytest.mark.parametrize("relative", sorted(REAL_SUBJECT_FILES)[:2])
def test_block_markers_on_a_subject_page_stop_the_fast_path(relative: str) -> None:
    body, url = real_subject_page(relative)
    title_start, title_end = body.index(b"<title>") + len(b"<title>"), body.index(b"</title>")

    def titled(title: str) -> bytes:
        return body[:title_start] + title.encode() + body[title_end:]

    altered = [
        (body.replace(b"</body>", CAPTCHA_FORM + b"</body>"), url, PageKind.CAPTCHA),
        (titled("豆瓣 - 登录跳转页"), url, PageKind.LOGIN_WALL),
        (titled("登录\n  跳转页"), url, PageKind.LOGIN_WALL),  # a line break inside the marker
        (titled("三体 - 读书 - 豆瓣搜索"), url, PageKind.SEARCH),
        (titled("三体 的全部版本 (豆瓣)"), url, PageKind.WORKS),
        (body, "https://book.douban.com/works/1001885", PageKind.WORKS),
        (body, "https://search.douban.com/subject/1/", PageKind.SEARCH),
    ]
    for page, page_url, expected in altered:
        assert not parse._is_plain_subject_page(page, page_url)
        assert assert_agrees(page, page_url) is expected


def test_pages_the_fast_path_cannot_read_fall_back_to_the_parse(site: SiteRenderer) -> None:
    record = next(iter(site.by_id.values()))
    url = f"{SIM}/subject/{record.id}/"
    page = site.subject_page(record)
    gbk = page.decode("utf-8").replace("charset=UTF-8", "charset=gbk").replace('charset="utf-8"', 'charset="gbk"')
    gbk_page = gbk.replace('<meta charset="UTF-8">', '<meta charset="gbk">').encode("gb18030")
    for body in (gbk_page, page.replace(b"<title>", b"<!-- <title> -->", 1)):
        assert not parse._is_plain_subject_page(body, url)
        assert assert_agrees(body, url) is PageKind.SUBJECT
    assert classify_page(b"", url) is PageKind.OTHER


MARKERS = [
    CAPTCHA_FORM,
    b'<div class="captcha">x</div>',
    "<title>豆瓣 - 登录跳转页</title>".encode(),
    "<p>有异常请求从你的 IP 发出，请登录使用豆瓣。</p>".encode(),
    "<title>禁止访问</title>".encode(),
    b"<h1>",
    b"</title>",
    b"<!--",
    b"-->",
    b"<script>",
    b"<style>",
    b"<textarea>",
    b'<span property="v:itemreviewed">',
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_markers_inserted_anywhere_never_make_the_two_paths_disagree(site: SiteRenderer, data: st.DataObject) -> None:
    record = data.draw(st.sampled_from(sorted(site.by_id.values(), key=lambda r: r.id)))
    body = site.subject_page(record)
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.integers(0, len(body)))
        body = body[:where] + data.draw(st.sampled_from(MARKERS)) + body[where:]
    assert_agrees(body, f"{SIM}/subject/{record.id}/")
