"""The local Douban simulator: URL space, both page eras, escaping, faults, cookies and the CLI.

Pages are checked with lxml XPath written here, never with the project's parser.
"""

from __future__ import annotations

import html as html_lib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit
from urllib.robotparser import RobotFileParser

import lxml.html
import pytest
import requests

from imcm_build.records import Record, RecordError
from imcm_build.simulator import DoubanSimulator, FaultSpec, load_simulator_records
from tests.conftest import shared_path

SLOW_SECONDS = 1.0


def book(subject_id: str, title: str = "", summary: str = "", tags: tuple[str, ...] = ("小说",),
         author_intro: str = "") -> Record:
    return Record(id=subject_id, title=title or f"书名{subject_id}", summary=summary, tags=tags,
                  url=f"https://book.douban.com/subject/{subject_id}/", author_intro=author_intro)


SMALL_SITE = [book(str(1000 + n), summary=f"第{n}本书的内容简介。") for n in range(30)]


def get(simulator: DoubanSimulator, path: str, session: requests.Session | None = None,
        **kwargs: object) -> requests.Response:
    return (session or requests).get(simulator.base_url + path, allow_redirects=False, timeout=10, **kwargs)


def parse(response: requests.Response) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(response.content.decode("utf-8"))


def criteria_tags(page: str) -> list[str]:
    """Tags of the `criteria` JS variable, decoded as documented in imcm_build/simulator/render.py."""
    value = re.search(r"criteria = '([^']*)'", page).group(1)
    return [html_lib.unescape(item[2:]) for item in value.split("|") if item.startswith("7:")]


def intro_text(container: lxml.html.HtmlElement) -> str:
    return "\n".join(p.text_content() for p in container.xpath('.//div[@class="intro"]/p'))


def summary_text(doc: lxml.html.HtmlElement) -> str:
    report = doc.xpath('//div[@id="link-report"]')[0]
    full = report.xpath('./span[@class="all hidden "]')
    return intro_text(full[0] if full else report)


@pytest.fixture(scope="module")
def real_records() -> list[Record]:
    return load_simulator_records(shared_path("douban-public/records.jsonl"))


@pytest.fixture(scope="module")
def real_site(real_records: list[Record]) -> DoubanSimulator:
    with DoubanSimulator(real_records) as simulator:
        yield simulator


# ----- lifecycle -----


def test_start_stop_and_base_url() -> None:
    simulator = DoubanSimulator(SMALL_SITE)
    with pytest.raises(RuntimeError, match="not started"):
        _ = simulator.base_url
    with simulator:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", simulator.base_url)
        assert get(simulator, "/robots.txt").status_code == 200
        url = simulator.base_url
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/robots.txt", timeout=5)


def test_explicit_port_is_used() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with DoubanSimulator(SMALL_SITE, port=port) as simulator:
        assert simulator.base_url == f"http://127.0.0.1:{port}"


def test_concurrent_requests_are_all_counted_and_logged() -> None:
    with DoubanSimulator(SMALL_SITE) as simulator:
        def fetch_ten(offset: int) -> None:
            with requests.Session() as session:
                for n in range(10):
                    assert get(simulator, f"/subject/{1000 + (offset + n) % 30}/", session).status_code == 200

        threads = [threading.Thread(target=fetch_ten, args=(offset,)) for offset in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert simulator.request_count == 60
        assert len(simulator.request_log) == 60
        assert all(status == 200 for _, status in simulator.request_log)


def test_bad_records_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be digits.*'b12'"):
        DoubanSimulator([book("b12")])
    with pytest.raises(ValueError, match="duplicate subject id '7'"):
        DoubanSimulator([book("7"), book("7")])
    with pytest.raises(ValueError, match="unknown era"):
        DoubanSimulator(SMALL_SITE, era="2019")
    records_file = tmp_path / "records.jsonl"
    records_file.write_text(book("1").to_json() + "\n{not json\n", encoding="utf-8")
    with pytest.raises(RecordError, match=rf"{re.escape(str(records_file))}:2: malformed_json"):
        load_simulator_records(records_file)


# ----- URL space -----


def test_robots_txt_allows_listings_and_subjects_but_not_search() -> None:
    with DoubanSimulator(SMALL_SITE) as simulator:
        response = get(simulator, "/robots.txt")
        assert response.headers["Content-Type"].startswith("text/plain")
        robots = RobotFileParser()
        robots.parse(response.text.splitlines())
        base = simulator.base_url
        assert robots.can_fetch("imcm-crawler", f"{base}/subject/1000/")
        assert robots.can_fetch("imcm-crawler", f"{base}/tag/{quote('小说')}?start=20&type=T")
        assert robots.can_fetch("imcm-crawler", f"{base}/tag/")
        for refused in ("/subject_search?search_text=x", "/search?q=x", "/j/subject/1000/interest", "/sec/b"):
            assert not robots.can_fetch("imcm-crawler", base + refused), refused
        assert not robots.can_fetch("Wandoujia Spider", f"{base}/subject/1000/")


def test_tag_index_lists_every_tag_with_its_count_most_frequent_first(
        real_site: DoubanSimulator, real_records: list[Record]) -> None:
    expected = Counter(tag for record in real_records for tag in set(record.tags))
    cells = parse(get(real_site, "/tag/")).xpath('//table[@class="tagCol"]//td')
    listed = [(cell.xpath("./a")[0].text, int(cell.xpath("./b")[0].text.strip("()"))) for cell in cells]
    assert dict(listed) == dict(expected)
    counts = [count for _, count in listed]
    assert counts == sorted(counts, reverse=True)
    first_href = cells[0].xpath("./a/@href")[0]
    assert first_href == "/tag/" + quote(listed[0][0], safe="")


def listing_ids(doc: lxml.html.HtmlElement) -> list[str]:
    hrefs = doc.xpath('//ul[@class="subject-list"]/li[@class="subject-item"]/div[@class="info"]/h2/a/@href')
    return [re.search(r"/subject/(\d+)/$", href).group(1) for href in hrefs]


def test_tag_listing_pages_20_books_sorted_by_id(real_site: DoubanSimulator, real_records: list[Record]) -> None:
    tag, _ = Counter(tag for record in real_records for tag in set(record.tags)).most_common(1)[0]
    members = sorted((record for record in real_records if tag in record.tags), key=lambda record: int(record.id))
    assert 40 < len(members) < 1000
    first = parse(get(real_site, f"/tag/{quote(tag)}"))
    assert first.xpath("//h1")[0].text == f"豆瓣图书标签: {tag}"
    assert listing_ids(first) == [record.id for record in members[:20]]
    titles = first.xpath('//li[@class="subject-item"]//h2/a/@title')
    assert titles == [record.title for record in members[:20]]
    assert len(first.xpath('//li[@class="subject-item"]//div[@class="pub"]')) == 20
    assert first.xpath('//span[@class="next"]/a/@href') == [f"/tag/{quote(tag, safe='')}?start=20&type=T"]
    assert not first.xpath('//span[@class="prev"]/a')

    last_start = (len(members) - 1) // 20 * 20
    last = parse(get(real_site, f"/tag/{quote(tag)}?start={last_start}&type=T"))
    assert listing_ids(last) == [record.id for record in members[last_start:]]
    assert not last.xpath('//span[@class="next"]/a')
    assert last.xpath('//span[@class="prev"]/a')


def test_listing_is_empty_from_start_1000_like_douban() -> None:
    records = [book(str(5000 + n), tags=("长篇",)) for n in range(1030)]
    with DoubanSimulator(records) as simulator:
        page_49 = parse(get(simulator, f"/tag/{quote('长篇')}?start=980&type=T"))
        assert listing_ids(page_49) == [str(5000 + n) for n in range(980, 1000)]
        assert page_49.xpath('//span[@class="next"]/a/@href')[0].endswith("?start=1000&type=T")
        for start in (1000, 1020, 5000):
            empty = get(simulator, f"/tag/{quote('长篇')}?start={start}&type=T")
            assert empty.status_code == 200
            assert listing_ids(parse(empty)) == []
            assert "没有找到符合条件的图书" in empty.text
        assert listing_ids(parse(get(simulator, f"/tag/{quote('无此标签')}"))) == []


def test_listing_rejects_a_bad_start_or_sort() -> None:
    with DoubanSimulator(SMALL_SITE) as simulator:
        assert get(simulator, f"/tag/{quote('小说')}?start=abc").status_code == 400
        assert get(simulator, f"/tag/{quote('小说')}?start=-20").status_code == 400
        assert get(simulator, f"/tag/{quote('小说')}?type=Z").status_code == 400
        assert get(simulator, f"/tag/{quote('小说')}?type=S").status_code == 200


def test_subject_paths_redirects_and_not_found() -> None:
    with DoubanSimulator(SMALL_SITE) as simulator:
        redirect = get(simulator, "/subject/1003")
        assert redirect.status_code == 301
        assert redirect.headers["Location"] == f"{simulator.base_url}/subject/1003/"
        for missing in ("/subject/999999/", "/subject/abc/", "/subject/1003/comments", "/", "/works/5/"):
            assert get(simulator, missing).status_code == 404, missing
        assert get(simulator, "/subject/1003/?interest=wish").status_code == 200


def test_works_search_and_login_wall_pages() -> None:
    records = [*SMALL_SITE, book("2001", title="三体"), book("2002", title="三体II：黑暗森林")]
    with DoubanSimulator(records) as simulator:
        works = get(simulator, "/works/2001")
        assert works.status_code == 200
        assert f"{simulator.base_url}/subject/2001/" in parse(works).xpath("//a/@href")

        search = get(simulator, f"/subject_search?search_text={quote('三体')}&cat=1001")
        data = json.loads(re.search(r"window\.__DATA__ = (.*);\n", search.text).group(1))
        assert [item["id"] for item in data["items"]] == [2001, 2002]
        assert data["text"] == "三体"

        wall = get(simulator, "/sec/b?r=" + quote(f"{simulator.base_url}/subject/1000/", safe=""))
        assert wall.status_code == 200
        assert parse(wall).xpath("//title")[0].text == "豆瓣 - 登录跳转页"
        assert "有异常请求从你的 IP 发出" in wall.text


# ----- subject pages in both eras -----


def test_mixed_era_chooses_by_id_parity_and_pages_are_real_sized(
        real_site: DoubanSimulator, real_records: list[Record]) -> None:
    sample = real_records[::530]
    sizes = []
    for record in sample:
        response = get(real_site, f"/subject/{record.id}/")
        doc = parse(response)
        sizes.append(len(response.content))
        assert doc.xpath('//h1/span[@property="v:itemreviewed"]')[0].text == record.title
        has_tag_block = bool(doc.xpath('//div[@id="db-tags-section"]'))
        has_authors = bool(doc.xpath('//div[@id="authors"]'))
        assert has_tag_block == (int(record.id) % 2 == 1 and bool(record.tags))
        assert has_authors == (int(record.id) % 2 == 0)
        assert criteria_tags(response.text) == list(record.tags)
        assert summary_text(doc) == record.summary
    assert all(50_000 <= size <= 220_000 for size in sizes), sizes
    assert 85_000 <= sum(sizes) / len(sizes) <= 115_000


@pytest.mark.parametrize("era", ["2021", "2024"])
def test_era_dom(era: str) -> None:
    tags = tuple(f"标签{n}" for n in range(12))
    record = book("3001", title="星辰的继承者", summary="一句话简介。", tags=tags, author_intro="詹姆斯·霍根，英国科幻作家。")
    with DoubanSimulator([record, *SMALL_SITE], era=era) as simulator:
        response, base_url = get(simulator, "/subject/3001/"), simulator.base_url
    doc = parse(response)
    assert doc.xpath("//title")[0].text == "星辰的继承者 (豆瓣)"
    assert doc.xpath('//div[@id="info"]') and doc.xpath('//div[@id="interest_sectl"]')
    book_json = json.loads(doc.xpath('//script[@type="application/ld+json"]')[0].text)
    assert (book_json["@type"], book_json["name"]) == ("Book", "星辰的继承者")
    assert book_json["url"] == f"{base_url}/subject/3001/"
    headings = [h2.text_content().split()[0] for h2 in doc.xpath('//div[@class="related_info"]/h2')]
    assert headings[0] == "内容简介" and "作者简介" in headings
    assert summary_text(doc) == "一句话简介。"
    author_block = doc.xpath('//h2[span="作者简介"]/following-sibling::div[contains(@class, "indent")][1]')[0]
    assert intro_text(author_block) == "詹姆斯·霍根，英国科幻作家。"
    assert criteria_tags(response.text) == list(tags)
    assert re.search(r"criteria = '[^']*\|3:/subject/3001/'", response.text)
    visible = doc.xpath('//div[@id="db-tags-section"]//a[contains(@class, "tag")]')
    if era == "2021":
        assert [a.text for a in visible] == list(tags[:8])
        assert [a.get("href") for a in visible][0] == "/tag/" + quote("标签0", safe="")
        assert "(共12个)" in doc.xpath('//div[@id="db-tags-section"]/h2/span')[0].text
        assert not doc.xpath('//div[@id="authors"]')
    else:
        assert visible == []
        assert doc.xpath('//div[@id="authors"]/ul[contains(@class, "authors-list")]')


def test_long_intro_is_folded_like_douban() -> None:
    summary = "第一段" + "很长的内容" * 30 + "\n\n第三段，在空行之后。"
    with DoubanSimulator([book("4001", summary=summary)]) as simulator:
        doc = parse(get(simulator, "/subject/4001/"))
    report = doc.xpath('//div[@id="link-report"]')[0]
    short = report.xpath('./span[@class="short"]')[0]
    assert short.text_content().strip().endswith("(展开全部)")
    assert intro_text(short).startswith("第一段很长的内容")
    assert "..." in intro_text(short) and len(intro_text(short)) < len(summary)
    assert len(report.xpath('./span[@class="all hidden "]')) == 1
    assert summary_text(doc) == summary


def test_sections_absent_from_the_record_are_not_rendered() -> None:
    bare = book("5001", summary="", tags=())
    with DoubanSimulator([bare, *SMALL_SITE], era="2021") as simulator:
        response = get(simulator, "/subject/5001/")
    doc = parse(response)
    headings = " ".join(h2.text_content() for h2 in doc.xpath("//h2"))
    assert "内容简介" not in headings and "作者简介" not in headings
    assert not doc.xpath('//div[@id="link-report"]') and not doc.xpath('//div[@id="db-tags-section"]')
    assert criteria_tags(response.text) == []
    assert doc.xpath('//h1/span[@property="v:itemreviewed"]')[0].text == "书名5001"


def test_record_text_is_escaped_everywhere() -> None:
    title = "<i>Tom & \"Jerry\"</i> l'amour &amp;"
    summary = "正文 </span></div><script>alert(1)</script> & 'quotes' \"double\" &lt;\n第二行 </p>"
    tags = ("a&b", "<c>", "it's", 'say "hi"', "x|y", "back\\slash", "</script>", "普通")
    tricky = book("6001", title=title, summary=summary, tags=tags, author_intro="作者 <b>粗</b> & co")
    plain = book("6003", title="普通书", summary="普通简介", tags=("普通",), author_intro="普通作者")
    with DoubanSimulator([tricky, plain], era="2021") as simulator:
        response, reference = get(simulator, "/subject/6001/"), get(simulator, "/subject/6003/")
        listing = parse(get(simulator, f"/tag/{quote('普通')}"))
        index = parse(get(simulator, "/tag/"))
    doc = parse(response)
    assert "<script>alert(1)" not in response.text
    assert len(doc.xpath("//script")) == len(parse(reference).xpath("//script"))
    assert doc.xpath('//h1/span[@property="v:itemreviewed"]')[0].text == title
    assert doc.xpath("//title")[0].text == f"{title} (豆瓣)"
    assert doc.xpath('//meta[@property="og:title"]/@content') == [title]
    assert json.loads(doc.xpath('//script[@type="application/ld+json"]')[0].text)["name"] == title
    assert summary_text(doc) == summary
    assert [a.text for a in doc.xpath('//div[@id="db-tags-section"]//a')] == list(tags)
    assert criteria_tags(response.text) == list(tags)
    assert listing.xpath('//li[@class="subject-item"]//h2/a/@title')[0] == title
    assert sorted(a.text for a in index.xpath('//table[@class="tagCol"]//a')) == sorted(tags)


# ----- faults -----


def observe(simulator: DoubanSimulator, path: str, session: requests.Session) -> str:
    """Fetch `path` and name what came back: "ok" or the fault that was served."""
    started = time.monotonic()
    try:
        response = get(simulator, path, session)
    except requests.exceptions.ChunkedEncodingError:
        return "truncated-close"
    elapsed = time.monotonic() - started
    if response.status_code == 429:
        assert response.headers["Retry-After"] == "1"
        return "429"
    if response.status_code in (403, 500, 503):
        return str(response.status_code)
    if response.status_code == 301:
        assert response.headers["Location"] == simulator.base_url + path + "?redirected=1"
        return "redirect"
    if response.status_code == 302:
        location = urlsplit(response.headers["Location"])
        if location.netloc == "evil.example.com":
            assert location.path == path
            return "offsite"
        assert f"{location.scheme}://{location.netloc}" == simulator.base_url and location.path == "/sec/b"
        assert parse_qs(location.query)["r"] == [simulator.base_url + path]
        return "login"
    assert response.status_code == 200, response.status_code
    assert int(response.headers["Content-Length"]) == len(response.content)
    try:
        text = response.content.decode("utf-8")
    except UnicodeDecodeError:
        return "malformed"
    if "captcha-solution" in text:
        assert lxml.html.fromstring(text).xpath('//img[@id="captcha_image"]')
        return "captcha"
    if not text.rstrip().endswith("</html>"):
        return "truncated"
    return "slow" if elapsed >= SLOW_SECONDS * 0.8 else "ok"


@pytest.mark.parametrize(("spec", "label"), [
    ("429_every=3", "429"),
    ("500_every=3", "500"),
    ("503_every=3", "503"),
    ("offsite_every=3", "offsite"),
    ("redirect_every=3", "redirect"),
    ("malformed_every=3", "malformed"),
    ("truncate_every=3", "truncated"),
    ("truncate_every=3,truncate_mode=close", "truncated-close"),
    (f"slow_every=3,slow_seconds={SLOW_SECONDS}", "slow"),
])
def test_every_k_fault_fires_on_the_kth_request_but_not_on_the_retry(spec: str, label: str) -> None:
    paths = ["/subject/1000/", "/subject/1001/", "/subject/1002/", "/subject/1002/", "/tag/", "/subject/1004/"]
    with DoubanSimulator(SMALL_SITE, faults=spec) as simulator, requests.Session() as session:
        assert get(simulator, "/robots.txt", session).status_code == 200  # never counted
        seen = [observe(simulator, path, session) for path in paths]
    assert seen == ["ok", "ok", label, "ok", "ok", label]


def test_truncated_body_is_half_of_the_page() -> None:
    with DoubanSimulator(SMALL_SITE, faults="truncate_every=1") as simulator, requests.Session() as session:
        cut = get(simulator, "/subject/1005/", session)
        whole = get(simulator, "/subject/1005/", session)
    assert len(cut.content) == len(whole.content) // 2
    assert whole.content.startswith(cut.content)


def test_every_request_faults_with_k_1_yet_each_retry_succeeds() -> None:
    with DoubanSimulator(SMALL_SITE, faults="500_every=1") as simulator, requests.Session() as session:
        seen = [observe(simulator, path, session) for path in ("/subject/1000/",) * 2 + ("/subject/1001/",) * 2]
        assert seen == ["500", "ok", "500", "ok"]
        assert simulator.request_log == [("/subject/1000/", 500), ("/subject/1000/", 200),
                                         ("/subject/1001/", 500), ("/subject/1001/", 200)]


def test_coinciding_faults_follow_the_documented_order() -> None:
    with DoubanSimulator(SMALL_SITE, faults="500_every=2,429_every=3") as simulator, requests.Session() as session:
        seen = [observe(simulator, f"/subject/{1000 + n}/", session) for n in range(6)]
    assert seen == ["ok", "500", "429", "500", "ok", "429"]


@pytest.mark.parametrize(("spec", "label"), [("403_after=2", "403"), ("login_after=2", "login"),
                                             ("captcha_after=2", "captcha")])
def test_blocks_persist_until_cleared(spec: str, label: str) -> None:
    with DoubanSimulator(SMALL_SITE, faults=spec) as simulator, requests.Session() as session:
        paths = ["/subject/1000/", "/tag/", "/subject/1002/", "/subject/1002/", "/subject/1003/"]
        assert [observe(simulator, path, session) for path in paths] == ["ok", "ok", label, label, label]
        assert get(simulator, "/robots.txt", session).status_code == 200
        simulator.clear_block()
        paths = ["/subject/1004/", "/subject/1005/", "/subject/1006/"]
        assert [observe(simulator, path, session) for path in paths] == ["ok", "ok", label]


def test_login_redirect_leads_to_the_login_wall() -> None:
    with DoubanSimulator(SMALL_SITE, faults="login_after=0") as simulator:
        response = requests.get(simulator.base_url + "/subject/1000/", timeout=10)
    assert [r.status_code for r in response.history] == [302]
    assert response.status_code == 200
    assert parse(response).xpath("//title")[0].text == "豆瓣 - 登录跳转页"
    assert "有异常请求从你的 IP 发出" in response.text


def test_faultspec_parse_and_round_trip() -> None:
    spec = FaultSpec.parse(" 403_after=50, 429_every=7,slow_every=5,slow_seconds=0.5,truncate_every=9 ")
    assert dict(spec.after) == {spec.after[0][0]: 50}
    assert sorted(count for _, count in spec.every) == [5, 7, 9]
    assert spec.slow_seconds == 0.5 and spec.truncate_mode == "honest"
    assert FaultSpec.parse(str(spec)) == spec
    assert FaultSpec.parse("") == FaultSpec()


@pytest.mark.parametrize(("spec", "named"), [
    ("bogus=1", "bogus=1"),
    ("429_every", "429_every"),
    ("429_every=", "429_every="),
    ("500_every=0", "500_every=0"),
    ("503_every=two", "503_every=two"),
    ("403_after=-1", "403_after=-1"),
    ("slow_seconds=2", "slow_seconds=2"),
    ("slow_every=2,slow_seconds=soon", "slow_seconds=soon"),
    ("truncate_every=2,truncate_mode=sideways", "truncate_mode=sideways"),
])
def test_faultspec_parse_errors_name_the_bad_item(spec: str, named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(named))):
        FaultSpec.parse(spec)


# ----- cookies and request headers -----


def test_required_cookie_and_recorded_headers() -> None:
    with DoubanSimulator(SMALL_SITE, require_cookie="Xy12") as simulator:
        assert get(simulator, "/robots.txt").status_code == 200
        assert get(simulator, "/subject/1000/").status_code == 403
        assert get(simulator, "/subject/1000/", cookies={"bid": "wrong"}).status_code == 403
        with requests.Session() as session:
            session.headers["User-Agent"] = "imcm-test/1.0 (+https://example.org)"
            session.cookies.set("bid", "Xy12")
            assert get(simulator, "/subject/1000/", session).status_code == 200
        assert simulator.request_headers[-1]["User-Agent"] == "imcm-test/1.0 (+https://example.org)"
        assert not any("Cookie" in headers for headers in simulator.request_headers)
        assert [status for _, status in simulator.request_log] == [200, 403, 403, 200]


# ----- the `simulate` command -----


def test_simulate_command_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    records_file = tmp_path / "records.jsonl"
    records_file.write_text("".join(record.to_json() + "\n" for record in SMALL_SITE), encoding="utf-8")
    command = [sys.executable, "-m", "imcm_build.cli", "simulate", "--records", str(records_file),
               "--era", "2024", "--faults", "503_every=2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        base_url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url), base_url
        assert requests.get(base_url + "/subject/1001/", timeout=10).status_code == 200
        assert requests.get(base_url + "/subject/1002/", timeout=10).status_code == 503
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        assert "stopped after 2 requests" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
