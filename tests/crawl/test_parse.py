"""The Douban page parser on the real saved pages in shared/data/douban-html and on crafted edge cases.

Expected values were read off the pages by hand (grep/less), not produced by the parser.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imcm_build.crawl.parse import (
    ListingPage,
    PageKind,
    ParseRejection,
    classify_page,
    decode_html,
    parse_info,
    parse_listing,
    parse_subject,
    parse_tag_index,
    subject_id_from_url,
)
from imcm_build.records import Record
from tests.conftest import shared_path

SUBJECT_URL = "https://book.douban.com/subject/{}/"
LISTING_URL = "https://book.douban.com/tag/%E7%BC%96%E7%A8%8B?start=0&type=T"
SEARCH_URL = "https://search.douban.com/book/subject_search?search_text={}&cat=1001"


def real_page(relative: str) -> bytes:
    return shared_path(f"douban-html/{relative}").read_bytes()


@dataclass(frozen=True)
class Expected:
    file: str
    subject_id: str
    title: str
    tags: tuple[str, ...]
    tag_source: str
    summary_start: str
    summary_end: str
    summary_paragraphs: int
    intro_start: str
    intro_end: str


REAL_SUBJECT_PAGES = [
    Expected(
        "mikihau/douban-book_27119879.html",
        "27119879",
        "星辰的繼承者",
        (
            "科幻",
            "科幻小说",
            "科幻推理",
            "科幻小說",
            "推理",
            "小说",
            "英国",
            "推理小說",
            "詹姆士·霍根",
            "詹姆士．霍根",
        ),
        "tag_block+criteria",
        "純正的科幻小說，亞瑟‧克拉克得讓點位子出來了！／艾西莫夫\n在月球表面上居然出現了一具五萬年前的人類屍體！",
        "一切的答案都在那看似遙不可及的閃耀星辰之間。\n「巨人系列」二、三部《甘尼米德的溫柔巨人》、《巨人之星》（暫譯）陸續出版……",
        21,
        "詹姆士‧霍根（James P. Hogan，1941－2010）\n英國科幻小說家。",
        "譯作有《孤獨癖》、《狂暴年代》、《環遊精靈國度的女孩》（合譯）。\ngabbybegood@gmail.com",
    ),
    Expected(
        "boofilsic/https___book_douban_com_subject_1089243_.html",
        "1089243",
        "黄金时代",
        ("王小波", "黄金时代", "小说", "中国文学", "经典", "文学", "文革", "当代", "爱情", "中国"),
        "criteria",
        "《黄金时代》是《时代三部曲》之一。  这是以文革时期为背景的系列作品构成的长篇。",
        "于是他以性爱作为对抗外部世界的最后据点，将性爱表现得既放浪形骸又纯",
        1,
        "王小波：男，1952年生于北京。",
        "回国后在中国人民大学和北京大学任教。",
    ),
    Expected(
        "boofilsic/https___book_douban_com_subject_35902899_.html",
        "35902899",
        "1984 Nineteen Eighty-Four",
        (),
        "none",
        "Ravaged by years of war and civil conflict, Britain has changed its name to Airstrip One",
        "which has a deep resonance with the world we live in.",
        2,
        "Die utopische Fabel „Farm der Tiere“ und der Roman „1984“",
        "Sechs Wochen vor seinem Tod heiratete Orwell seine langjährige Freundin Sonia Brownell.",
    ),
    Expected(
        "nevertoomanybooks/douban_9787532190294_25930607.html",
        "25930607",
        "9787539190594",
        (),
        "none",
        "",
        "",
        0,
        "",
        "",
    ),
    Expected(
        "nevertoomanybooks/douban_9787532190294_36897178.html",
        "36897178",
        "伽利略的错误",
        (
            "科普",
            "哲学",
            "英国",
            "心理学",
            "心灵哲学",
            "认知科学",
            "菲利普·高夫",
            "自然科学",
            "科学人文",
            "理论",
        ),
        "criteria",
        "自然科学在解释意识上的失败，似乎让我们不得不在物理主义和某种二元论之间做出选择，",
        "意识一开始就存在。关于这一引人入胜的话题，再没有比本书更好的导论了。”\n——史蒂芬·劳，牛津大学继续教育系哲学主任",
        12,
        "菲利普·高夫（Philip Goff）——著\n英国哲学家，英国杜伦大学哲学教授，",
        "傅星源——译\n哲学博士，山西大学哲学学院副教授。",
    ),
    Expected(
        "nevertoomanybooks/douban_9787536692930_36874304.html",
        "36874304",
        "三体",
        ("小说", "2022"),
        "criteria",
        "军方探寻外星文明的绝秘计划“红岸工程”取得了突破性进展。",
        "三体人庞大的宇宙舰队开始向地球进发……\n人类的末日悄然来临。",
        3,
        "刘慈欣，祖籍河南，长于山西，中国科普作家协会会员，山西省作家协会会员，高级工程师。\n自1999年处女作《鲸歌》问世以来，",
        "成为2006年度最受关注、最畅销的科幻小说。",
    ),
]
SEARCH_PAGES = {
    "nevertoomanybooks/douban_multi_9787532190294.html": "9787532190294",
    "nevertoomanybooks/douban_multi_9787536692930.htm": "9787536692930",
}
LISTING_PAGE = "tag-listing/tag_biancheng_2021.html"
LISTING_IDS = [
    "35196328", "35641088", "35524665", "4822685", "30329536", "6021440", "26912767", "1148282", "5333562",
    "30293801", "35006892", "1477390", "35218199", "27028517", "25756435", "19952400", "26979890", "35387685",
    "35635836", "1052241",
]  # fmt: skip


def paragraphs(text: str) -> list[str]:
    return text.split("\n") if text else []


def parsed(expected: Expected) -> Record:
    record = parse_subject(
        real_page(expected.file), SUBJECT_URL.format(expected.subject_id), "2024-07-08T00:00:00Z"
    )
    assert isinstance(record, Record), record
    return record


def test_every_real_page_has_expectations() -> None:
    folder = shared_path("douban-html")
    on_disk = {str(path.relative_to(folder)) for path in folder.rglob("*.htm*")}
    known = {page.file for page in REAL_SUBJECT_PAGES} | set(SEARCH_PAGES) | {LISTING_PAGE}
    assert on_disk == known


@pytest.mark.parametrize("expected", REAL_SUBJECT_PAGES, ids=lambda page: page.subject_id)
def test_real_subject_page_gives_expected_record(expected: Expected) -> None:
    record = parsed(expected)
    assert record.id == expected.subject_id
    assert record.url == SUBJECT_URL.format(expected.subject_id)
    assert record.title == expected.title
    assert record.tags == expected.tags
    assert record.tag_source == expected.tag_source
    assert record.source == "douban"
    assert record.fetched_at == "2024-07-08T00:00:00Z"
    assert record.summary.startswith(expected.summary_start)
    assert record.summary.endswith(expected.summary_end)
    assert len(paragraphs(record.summary)) == expected.summary_paragraphs
    assert record.author_intro.startswith(expected.intro_start)
    assert record.author_intro.endswith(expected.intro_end)
    for text in (record.summary, record.author_intro):
        assert "展开全部" not in text
        assert "text-indent" not in text  # the <style> inside the intro blocks
        assert all(line == line.strip() and line for line in paragraphs(text))


@pytest.mark.parametrize("expected", REAL_SUBJECT_PAGES, ids=lambda page: page.subject_id)
def test_real_subject_page_classifies_as_subject(expected: Expected) -> None:
    url = SUBJECT_URL.format(expected.subject_id)
    assert classify_page(real_page(expected.file), url) is PageKind.SUBJECT


def test_empty_summary_and_intro_when_the_page_has_none() -> None:
    record = parsed(REAL_SUBJECT_PAGES[3])
    assert (record.summary, record.author_intro) == ("", "")


def test_full_text_is_taken_from_span_all_not_the_cut_short_text() -> None:
    galileo = parsed(REAL_SUBJECT_PAGES[4])
    assert "🤖人类意识是否独一无二？人工智能会有自我意识吗？从“泛心论”出发重新观察世界" in galileo.summary
    assert "🤖..." not in galileo.summary
    orwell = parsed(REAL_SUBJECT_PAGES[2])  # its author intro uses class="all hidden " (trailing space)
    assert "Er kämpfte 1936 im Spanischen Bürgerkrieg" in orwell.author_intro
    assert "politi..." not in orwell.author_intro


def test_pretty_printed_line_breaks_vanish_between_chinese_characters() -> None:
    galileo = parsed(REAL_SUBJECT_PAGES[4])  # "…意识是\n      物理世界中…" in the re-indented source
    assert "根据这一理论，意识是物理世界中基本的、普遍存在的特征" in galileo.summary


def test_the_2024_creators_section_is_not_the_author_intro() -> None:
    three_body = parsed(REAL_SUBJECT_PAGES[5])
    assert len(paragraphs(three_body.author_intro)) == 2
    assert "三体的创作者" not in three_body.author_intro


def test_parse_info_reads_key_values_with_the_colon_inside_or_outside_the_span() -> None:
    galileo = parse_info(real_page(REAL_SUBJECT_PAGES[4].file))
    assert galileo["作者"] == "[英] 菲利普·高夫"  # <span class="pl">作者</span>: <a>…</a>
    assert galileo["出版社"] == "上海文艺出版社"
    assert galileo["原作名"] == "Galileo's Error: Foundations for a New Science of Consciousness"
    assert galileo["出版年"] == "2024-6"
    assert galileo["ISBN"] == "9787532190294"
    stars = parse_info(real_page(REAL_SUBJECT_PAGES[0].file))
    assert stars["作者"] == "詹姆士·霍根"
    assert stars["译者"] == "歸也光"
    assert stars["丛书"] == "H+W"
    assert stars["出版社"] == "獨步文化"


@pytest.mark.parametrize("file", sorted(SEARCH_PAGES))
def test_search_result_pages_are_rejected_not_parsed(file: str) -> None:
    body = real_page(file)
    search_url = SEARCH_URL.format(SEARCH_PAGES[file])
    assert classify_page(body, search_url) is PageKind.SEARCH
    for url in (search_url, SUBJECT_URL.format("36874304")):
        result = parse_subject(body, url)
        assert isinstance(result, ParseRejection)
        assert result.reason == "not_a_subject_page:search"
        assert result.url == url


def test_real_tag_listing_page() -> None:
    body = real_page(LISTING_PAGE)
    assert classify_page(body, LISTING_URL) is PageKind.TAG_LISTING
    listing = parse_listing(body, LISTING_URL)
    assert listing == ListingPage(tag="编程", start=0, subject_ids=LISTING_IDS, has_next=True)
    later = parse_listing(body, "https://book.douban.com/tag/编程?start=40&type=T")
    assert isinstance(later, ListingPage) and later.start == 40


def test_last_listing_page_has_no_next() -> None:
    body = real_page(LISTING_PAGE).replace(b'<span class="next">', b'<span class="nothing-next">')
    listing = parse_listing(body, LISTING_URL)
    assert isinstance(listing, ListingPage) and listing.has_next is False and len(listing.subject_ids) == 20


def test_listing_rejections() -> None:
    body = real_page(LISTING_PAGE)
    assert parse_listing(body, "https://book.douban.com/tag/小说?start=0").reason == "tag_mismatch"
    assert parse_listing(body, "https://book.douban.com/tag/编程?start=-20").reason == "bad_url"
    assert parse_listing(body[:30_000], LISTING_URL).reason == "truncated"
    assert (
        parse_listing(real_page(REAL_SUBJECT_PAGES[5].file), LISTING_URL).reason
        == "not_a_listing_page:subject"
    )
    unlinked = body.replace(b'href="https://book.douban.com/subject/5333562/"', b'href="#"')
    rejection = parse_listing(unlinked, LISTING_URL)
    assert rejection.reason == "listing_item_without_subject" and "item 9" in rejection.detail


# ------------------------------------------------------------------------------- crafted edge cases


def test_empty_criteria_gives_no_tags() -> None:
    body = real_page(REAL_SUBJECT_PAGES[1].file)
    criteria = "criteria = '7:王小波|7:黄金时代|7:小说|7:中国文学|7:经典|7:文学|7:文革|7:当代|7:爱情|7:中国|3:/subject/1089243/'"
    assert criteria.encode() in body
    record = parse_subject(
        body.replace(criteria.encode(), b"criteria = '|3:/subject/1089243/'"), SUBJECT_URL.format("1089243")
    )
    assert isinstance(record, Record)
    assert (record.tags, record.tag_source) == ((), "none")


def test_page_for_another_id_is_rejected() -> None:
    result = parse_subject(real_page(REAL_SUBJECT_PAGES[0].file), SUBJECT_URL.format("1089243"))
    assert isinstance(result, ParseRejection)
    assert result.reason == "id_mismatch"
    assert "1089243" in result.detail and "27119879" in result.detail


def test_truncated_page_is_rejected() -> None:
    body = real_page(REAL_SUBJECT_PAGES[0].file)
    for cut in (body[:2048], body[: len(body) // 2]):
        result = parse_subject(cut, SUBJECT_URL.format("27119879"))
        assert isinstance(result, ParseRejection) and result.reason == "truncated"


def test_empty_and_non_subject_urls_are_rejected() -> None:
    assert parse_subject(b"", SUBJECT_URL.format(1)).reason == "empty_page"
    assert parse_subject(b"  \n ", SUBJECT_URL.format(1)).reason == "empty_page"
    assert classify_page(b"", SUBJECT_URL.format(1)) is PageKind.OTHER
    body = real_page(REAL_SUBJECT_PAGES[5].file)
    assert parse_subject(body, "https://movie.douban.com/subject/36874304/").reason == "not_a_subject_url"


def crafted_subject_page(
    subject_id: str = "1000121",
    title: str = "昆虫记",
    info: str = '<span class="pl">ISBN:</span> 9787500000000<br/>',
    summary: str = '<div class="intro"><p>昆虫的故事。</p></div>',
    author_intro: str = '<div class="intro"><p>法布尔。</p></div>',
    tag_block: str = "",
    criteria: str | None = None,
    ld_json: str | None = None,
) -> bytes:
    """A subject page with the structure of the real ones (2021 layout), trimmed to what the parser reads."""
    criteria = f"|3:/subject/{subject_id}/" if criteria is None else criteria
    if ld_json is None:
        ld_json = json.dumps(
            {"@type": "Book", "name": title, "url": SUBJECT_URL.format(subject_id)}, ensure_ascii=False
        )
    heading = f'<h1>\n    <span property="v:itemreviewed">{html.escape(title)}</span>\n</h1>' if title else ""
    page = f"""<!DOCTYPE html>
<html lang="zh-cmn-Hans">
<head>
  <meta http-equiv="Content-Type" content="text/html; charset=utf-8">
  <title>{html.escape(title)} (豆瓣)</title>
  <script type="application/ld+json">{ld_json}</script>
</head>
<body>
<div id="wrapper">{heading}
<div id="content"><div class="article">
<div id="info" class="">{info}</div>
<div class="related_info">
  <h2><span>内容简介</span>&nbsp;&middot;&nbsp;&middot;</h2>
  <div class="indent" id="link-report">{summary}</div>
  <h2><span>作者简介</span>&nbsp;&middot;&nbsp;&middot;</h2>
  <div class="indent ">{author_intro}</div>
  {tag_block}
</div>
</div></div></div>
<script type="text/javascript">
  criteria = '{criteria}',
</script>
</body>
</html>
"""
    return page.encode("utf-8")


def crafted_record(body: bytes, subject_id: str = "1000121") -> Record:
    record = parse_subject(body, SUBJECT_URL.format(subject_id))
    assert isinstance(record, Record), record
    return record


def test_short_and_all_spans_with_trailing_space_class() -> None:
    summary = (
        '<span class="short"><div class="intro"><p>第一段。</p><p>第二...</p>'
        '<p><a href="javascript:void(0)" class="j a_show_full">(展开全部)</a></p></div></span>'
        '<span class="all hidden "><div class="intro"><p>第一段。</p><p>第二段完整。</p><p>第三段。</p></div></span>'
    )
    assert crafted_record(crafted_subject_page(summary=summary)).summary == "第一段。\n第二段完整。\n第三段。"


def test_full_span_without_intro_div_is_preferred_to_the_short_one() -> None:
    summary = '<span class="short"><p>第一段...</p></span><span class="all hidden"><p>第一段全文。</p><p>第二段。</p></span>'
    assert crafted_record(crafted_subject_page(summary=summary)).summary == "第一段全文。\n第二段。"


def test_short_span_alone_loses_the_expand_link() -> None:
    summary = (
        '<span class="short"><div class="intro"><p>只有短文本...</p>'
        '<p><a href="javascript:void(0)" class="j a_show_full">(展开全部)</a></p></div></span>'
    )
    assert crafted_record(crafted_subject_page(summary=summary)).summary == "只有短文本..."


def test_br_separated_intro_and_entities() -> None:
    summary = '<div class="intro"><p>甲 &amp; 乙<br>丙&lt;丁&gt;<br/>  </p></div>'
    assert crafted_record(crafted_subject_page(summary=summary)).summary == "甲 & 乙\n丙<丁>"


def test_colon_outside_the_span_in_info() -> None:
    info = (
        '<span>\n  <span class="pl"> 作者</span>:\n  <a href="/author/1">甲</a>\n  /\n  <a href="/author/2">乙</a>\n'
        '</span><br/>\n<span class="pl">出版社:</span> 某出版社<br/>\n<span class="pl">页数：</span> 300<br/>'
    )
    assert parse_info(crafted_subject_page(info=info)) == {
        "作者": "甲 / 乙",
        "出版社": "某出版社",
        "页数": "300",
    }
    assert parse_info(b"<html><body><p>no info</p></body></html>") == {}


def test_malformed_ld_json_is_tolerated() -> None:
    broken = (
        '{"@type": "Book", "name" : "昆虫\n记(插图本)", "url": "https://book.douban.com/subject/1000121/",}'
    )
    record = crafted_record(crafted_subject_page(title="", ld_json=broken))
    assert record.title == "昆虫记(插图本)"  # no h1: the name comes from the broken ld+json
    record = crafted_record(crafted_subject_page(ld_json="{this is not json"))
    assert record.title == "昆虫记"


def test_title_falls_back_to_the_page_title_without_suffix() -> None:
    body = crafted_subject_page(ld_json="{}").replace(b"<h1>", b"<h3>").replace(b"</h1>", b"</h3>")
    assert crafted_record(body).title == "昆虫记"


def test_tag_block_then_new_criteria_tags() -> None:
    block = (
        '<div id="db-tags-section" class="blank20"><h2><span>豆瓣成员常用的标签(共3个)</span></h2>'
        '<div class="indent"><span class=""><a class="  tag" href="/tag/科普">科普</a> &nbsp; </span>'
        '<span class=""><a class="  tag" href="/tag/法国">法国</a> &nbsp; </span></div></div>'
    )
    page = crafted_subject_page(
        tag_block=block, criteria="7:科普|7:生物|7:法国|7:C&amp;C++|3:/subject/1000121/"
    )
    record = crafted_record(page)
    assert record.tags == ("科普", "法国", "生物", "C&C++")
    assert record.tag_source == "tag_block+criteria"
    record = crafted_record(crafted_subject_page(tag_block=block, criteria="7:法国|3:/subject/1000121/"))
    assert (record.tags, record.tag_source) == (("科普", "法国"), "tag_block")


def test_only_the_criteria_variable_itself_is_read() -> None:
    page = crafted_subject_page(criteria="7:科普|3:/subject/1000121/")
    decoy = b"<script>var ad_criteria = '7:decoy|3:/subject/999/';</script>"
    record = crafted_record(page.replace(b'<div id="wrapper">', decoy + b'<div id="wrapper">'))
    assert record.tags == ("科普",)


def test_login_wall_is_recognised() -> None:
    page = (
        "<!DOCTYPE html><html><head><title>豆瓣 - 登录跳转页</title></head><body><div class='content'>"
        "<p>有异常请求从你的 IP 发出，请 <a href='https://www.douban.com/accounts/login'>登录</a> 使用豆瓣。</p>"
        "</div></body></html>"
    ).encode()
    url = SUBJECT_URL.format("1000121")
    assert classify_page(page, url) is PageKind.LOGIN_WALL
    result = parse_subject(page, url)
    assert isinstance(result, ParseRejection) and result.reason == "login_wall"
    forbidden = page.replace("豆瓣 - 登录跳转页".encode(), b"403 Forbidden")
    assert classify_page(forbidden, url) is PageKind.LOGIN_WALL  # the IP-block sentence alone is enough
    assert parse_listing(page, LISTING_URL).reason == "login_wall"


def test_captcha_page_is_recognised() -> None:
    page = (
        "<!DOCTYPE html><html><head><title>豆瓣</title></head><body><form action='/c' method='post'>"
        "<img id='captcha_image' src='/captcha.jpg'><input name='captcha-solution'><input type='hidden' "
        "name='captcha-id' value='x'></form></body></html>"
    ).encode()
    assert classify_page(page, SUBJECT_URL.format(1)) is PageKind.CAPTCHA
    assert parse_subject(page, SUBJECT_URL.format(1)).reason == "captcha"


def test_blocked_page_with_a_captcha_form_is_a_captcha() -> None:
    page = (
        "<!DOCTYPE html><html><head><title>禁止访问</title></head><body><p>检测到有异常请求从你的 IP 发出，"
        "请输入验证码</p><form method='post' action='/sec/captcha'><img id='captcha_image' src='/c.jpg'>"
        "<input name='captcha-solution'></form></body></html>"
    ).encode()
    assert classify_page(page, SUBJECT_URL.format(1)) is PageKind.CAPTCHA


def test_other_kinds_of_pages() -> None:
    assert (
        classify_page(b"User-agent: *\nDisallow: /search", "https://book.douban.com/robots.txt")
        is PageKind.ROBOTS
    )
    works = b"<html><head><title>x</title></head><body><h1>all editions</h1></body></html>"
    assert classify_page(works, "https://book.douban.com/works/1001885") is PageKind.WORKS
    works = "<html><head><title>三体 的全部版本 (豆瓣)</title></head><body></body></html>".encode()
    assert parse_subject(works, SUBJECT_URL.format(1)).reason == "not_a_subject_page:works"
    assert parse_subject(b"User-agent: *\nDisallow: /", SUBJECT_URL.format(1)).reason == "not_html"
    missing = (
        "<html><head><title>页面不存在</title></head><body><p>你要的东西不在这</p></body></html>".encode()
    )
    result = parse_subject(missing, SUBJECT_URL.format(1))
    assert result.reason == "not_a_subject_page:other" and "页面不存在" in result.detail


def test_gbk_page_and_invalid_utf8_bytes() -> None:
    gbk = crafted_subject_page().replace(b"charset=utf-8", b"charset=gbk").decode("utf-8").encode("gbk")
    assert crafted_record(gbk).summary == "昆虫的故事。"
    broken = crafted_subject_page().replace("昆虫的故事".encode(), b"\xe6\x98\x86\xff\xfe")
    assert crafted_record(broken).summary == "昆\ufffd\ufffd。"
    assert decode_html("标签".encode("gb18030"), "text/html; charset=GB2312") == "标签"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://book.douban.com/subject/1000121/", "1000121"),
        ("http://book.douban.com/subject/1000121", "1000121"),
        ("https://book.douban.com/subject/1000121/?from=tag", "1000121"),
        ("http://127.0.0.1:8123/subject/42/", "42"),
        ("https://movie.douban.com/subject/1000121/", None),
        ("https://book.douban.com/subject/abc/", None),
        ("https://book.douban.com/subject/1000121/comments/", None),
        ("https://evil.example.com/subject/1000121/", None),
        ("ftp://book.douban.com/subject/1/", None),
        ("not a url", None),
        ("http://[::1/subject/1/", None),
    ],
)
def test_subject_id_from_url(url: str, expected: str | None) -> None:
    assert subject_id_from_url(url) == expected


TAG_INDEX = """<!DOCTYPE html><html><head><title>豆瓣图书标签</title></head><body>
<div id="content"><h1>豆瓣图书标签</h1><div class="article"><div class="indent tag_cloud">
<a name="文学" class="tag-title-wrapper"><h2 style="padding-top:10px">文学 · · · · · · </h2></a>
<table class="tagCol"><tbody>
<tr><td><a href="/tag/小说">小说</a><b>(7654321)</b></td><td><a href="/tag/外国文学">外国文学</a><b>(2345678)</b></td></tr>
<tr><td><a href="/tag/%E6%96%87%E5%AD%A6">文学</a><b>(1234567)</b></td></tr>
</tbody></table>
<a name="流行" class="tag-title-wrapper"><h2>流行 · · · · · · </h2></a>
<table class="tagCol"><tbody><tr><td><a href="/tag/漫画">漫画</a><b>(1111)</b></td>
<td><a href="/tag/小说">小说</a><b>(7654321)</b></td></tr></tbody></table>
</div></div><p><a href="/tag/?view=cloud">所有热门标签</a></p></div></body></html>"""


def test_tag_index_in_page_order() -> None:
    assert parse_tag_index(TAG_INDEX.encode(), "https://book.douban.com/tag/") == [
        "小说",
        "外国文学",
        "文学",
        "漫画",
    ]
    assert classify_page(TAG_INDEX.encode(), "https://book.douban.com/tag/") is PageKind.TAG_INDEX


def test_tag_index_fallback_to_any_tag_link() -> None:
    page = TAG_INDEX.replace('class="tagCol"', 'class="tag-table"').encode()
    tags = parse_tag_index(page, "http://127.0.0.1:8123/tag/")
    assert tags == ["小说", "外国文学", "文学", "漫画"]
    empty = b"<html><head><title>t</title></head><body><a href='/tag/'>all</a></body></html>"
    assert parse_tag_index(empty, "https://book.douban.com/tag/").reason == "no_tags"
    assert parse_tag_index(real_page(LISTING_PAGE), LISTING_URL).reason == "not_a_tag_index_page:tag_listing"


# ------------------------------------------------------------------------------ round-trip property

PARAGRAPH = (
    st.text(
        alphabet=st.characters(
            whitelist_categories=("Lu", "Ll", "Lo", "Nd", "Po", "Ps", "Pe", "Sm", "So", "Zs")
        ),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(bool)
)


@settings(max_examples=60, deadline=None)
@given(
    title=PARAGRAPH,
    paragraphs=st.lists(PARAGRAPH, min_size=1, max_size=6),
    tags=st.lists(PARAGRAPH.filter(lambda tag: "|" not in tag), max_size=12, unique=True),
)
def test_escaped_paragraphs_tags_and_title_survive_a_round_trip(
    title: str, paragraphs: list[str], tags: list[str]
) -> None:
    summary = '<div class="intro">{}</div>'.format("".join(f"<p>{html.escape(p)}</p>" for p in paragraphs))
    criteria = "".join(f"7:{html.escape(tag)}|" for tag in tags) + "3:/subject/1000121/"
    record = crafted_record(crafted_subject_page(title=title, summary=summary, criteria=criteria))
    assert record.title == title
    assert record.summary == "\n".join(paragraphs)
    assert list(record.tags) == tags


def test_junk_tag_links_on_the_tag_index_are_not_tags() -> None:
    body = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>豆瓣图书标签</title></head><body>"
            "<table class='tagCol'><tr><td><a href='/tag/小说'>小说</a></td><td><a href='/tag/a%0Ab'>x</a></td>"
            "<td><a href='http://[bad/tag/y'>y</a></td><td><a href='/tag/科幻'>科幻</a></td></tr></table>"
            "</body></html>").encode()
    assert parse_tag_index(body, "https://book.douban.com/tag/") == ["小说", "科幻"]


def test_any_loopback_address_stands_for_douban() -> None:
    for host in ("127.0.0.1:8000", "127.0.0.2", "localhost:9", "[::1]:80"):
        assert subject_id_from_url(f"http://{host}/subject/1234/") == "1234"
    assert subject_id_from_url("http://10.0.0.1/subject/1234/") is None
