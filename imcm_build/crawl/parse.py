"""Douban page parser: page bytes in, a Record (or listing, or tag list) or a ParseRejection out.

Pure: no network, no state, no logging. Every page is parsed once with `lxml.html`; sections are found
by DOM rules (ids, classes, the `h2` heading text), and only the `criteria` JavaScript variable is read
with a regular expression.

Subject pages (`https://book.douban.com/subject/<id>/`):
- title: `h1 span[property=v:itemreviewed]`, else the ld+json `name`, else `<title>` minus " (豆瓣)".
- summary / author intro: the `div` after the `h2` headed 内容简介 / 作者简介 (`div#link-report` as a
  fallback for the summary). When Douban cuts a long text into `span.short` + "(展开全部)", the full text
  sits in `span.all.hidden`, which is used instead. Each `<p>` (or `<br>`-separated line) is one
  paragraph; paragraphs are stripped and joined with "\\n".
- tags: the visible `div#db-tags-section` block (pages up to early 2022, at most 8 tags) first, then the
  `7:` entries of `criteria = '7:科幻|7:小说|…|3:/subject/<id>/'` not already present. Real Douban
  caps `criteria` at about 10 tags; the local simulator carries all of them so a round trip is lossless.
  `Record.tag_source` says which of the two sources contributed.
- the id in the URL must agree with the page's own ids (criteria `3:/subject/<id>/`, canonical link /
  og:url, ld+json url), otherwise the page is rejected as "id_mismatch".
- `Record.url` is always the canonical `https://book.douban.com/subject/<id>/`, also for pages served
  by the local simulator on a loopback address.
"""

from __future__ import annotations

import codecs
import enum
import html
import ipaddress
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

import lxml.html
from lxml import etree

from imcm_build.records import Record

BOOK_HOST = "book.douban.com"
CANONICAL_SUBJECT_URL = "https://book.douban.com/subject/{}/"

LOGIN_WALL_TITLES = ("登录跳转页", "登录豆瓣")
# Douban's IP-block pages: "禁止访问" carries a captcha form when it offers one, else a login link.
BLOCKED_TITLE = "禁止访问"
LOGIN_WALL_PHRASE = "有异常请求从你的 IP 发出"
WORKS_TITLE_MARKER = "全部版本"
SUMMARY_HEADING = "内容简介"
AUTHOR_INTRO_HEADING = "作者简介"
TITLE_SUFFIX = "(豆瓣)"
LISTING_HEADING_PREFIX = "豆瓣图书标签"

# A page is complete when its closing </html> tag sits near the end; a cut body lacks it.
COMPLETE_PAGE_TAIL_CHARS = 4096
CHARSET_SNIFF_BYTES = 4096
HTML_START_CHARS = 1024


class PageKind(str, enum.Enum):
    SUBJECT = "subject"
    TAG_LISTING = "tag_listing"
    TAG_INDEX = "tag_index"
    LOGIN_WALL = "login_wall"
    CAPTCHA = "captcha"
    SEARCH = "search"
    WORKS = "works"
    ROBOTS = "robots"
    OTHER = "other"


@dataclass(frozen=True)
class ParseRejection:
    url: str
    reason: str  # short and machine-friendly, e.g. "id_mismatch" or "not_a_subject_page:search"
    detail: str  # a human explanation

    def __str__(self) -> str:
        return f"{self.url}: {self.reason}: {self.detail}"


@dataclass(frozen=True)
class ListingPage:
    tag: str
    start: int
    subject_ids: list[str]
    has_next: bool


# --------------------------------------------------------------------------------------------- URLs

_SUBJECT_PATH = re.compile(r"/subject/([1-9][0-9]*)/?")
_TAG_PATH = re.compile(r"/tag/([^/?#]+)/?")
_WORKS_PATH = re.compile(r"/works/[0-9]+/?")


def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback IP: where the local simulator serves Douban's paths."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _book_host(url: str) -> str | None:
    """The host of an http(s) URL on Douban's book site or the loopback simulator, else None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or host is None:
        return None
    return host if host == BOOK_HOST or is_loopback_host(host) else None


def _join(page_url: str, href: str | None) -> str | None:
    """The absolute address of a link on the page, or None when the href is not a valid URL."""
    try:
        return urljoin(page_url, (href or "").strip())
    except ValueError:
        return None


def subject_id_from_url(url: str) -> str | None:
    """The subject id of `http(s)://book.douban.com/subject/<digits>/` (or the simulator's), else None."""
    if _book_host(url) is None:
        return None
    match = _SUBJECT_PATH.fullmatch(urlsplit(url).path)
    return match.group(1) if match else None


def _subject_id_in_path(url: str) -> str | None:
    """The id of any `.../subject/<digits>/` address, whatever its host (used for the page's own ids)."""
    try:
        path = urlsplit(url.strip()).path
    except ValueError:
        return None
    match = _SUBJECT_PATH.fullmatch(path)
    return match.group(1) if match else None


def _tag_from_url(url: str) -> str | None:
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    match = _TAG_PATH.fullmatch(path)
    tag = unquote(match.group(1)).strip() if match else ""
    # a control character (e.g. an encoded newline) makes no tag name Douban shows: the link is junk
    return tag if tag and not any(unicodedata.category(char) == "Cc" for char in tag) else None


# --------------------------------------------------------------------------------- decoding, loading

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]+)""", re.IGNORECASE)
_CONTENT_TYPE_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9_:.-]+)""", re.IGNORECASE)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_CLOSING_HTML = re.compile(r"</html\s*>", re.IGNORECASE)
_HTML_START = re.compile(r"<(?:!doctype\s+html|html)\b", re.IGNORECASE)
# Browsers read these labels as the larger Chinese encodings (WHATWG Encoding Standard).
_ENCODING_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "iso8859-1": "cp1252"}


def _known_encoding(label: str) -> str | None:
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return _ENCODING_ALIASES.get(name, name)


def page_encoding(body: bytes, content_type: str | None = None) -> str:
    """The page's encoding: the charset in `content_type`, else in a `<meta>` tag, else UTF-8."""
    if body.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    declared = _CONTENT_TYPE_CHARSET.search(content_type or "")
    if declared and (encoding := _known_encoding(declared.group(1))):
        return encoding
    declared_in_page = _META_CHARSET.search(body, 0, CHARSET_SNIFF_BYTES)
    if declared_in_page and (encoding := _known_encoding(declared_in_page.group(1).decode("ascii"))):
        return encoding
    return "utf-8"


def decode_html(body: bytes, content_type: str | None = None) -> str:
    """Decode page bytes (see `page_encoding`); undecodable bytes become U+FFFD instead of failing."""
    return body.decode(page_encoding(body, content_type), errors="replace")


@dataclass(frozen=True)
class _Page:
    url: str
    text: str
    doc: lxml.html.HtmlElement


def _load(body: bytes, url: str) -> _Page | ParseRejection:
    if not body or body.isspace():
        return ParseRejection(url, "empty_page", "the response body is empty")
    encoding = page_encoding(body)
    text = body.decode(encoding, errors="replace")
    if encoding == "utf-8" and "\ufffd" not in text:
        source: bytes | str = body  # lxml parses clean UTF-8 bytes faster than a str
        parser = lxml.html.HTMLParser(encoding="utf-8")
    else:
        source = _XML_DECLARATION.sub("", text, count=1)  # lxml refuses a str with an encoding declaration
        parser = lxml.html.HTMLParser()
    try:
        doc = lxml.html.document_fromstring(source, parser=parser)
    except (etree.ParserError, ValueError) as error:
        return ParseRejection(url, "unparsable_html", f"lxml could not parse the page: {error}")
    return _Page(url, text, doc)


def _is_complete(page: _Page) -> bool:
    return _CLOSING_HTML.search(page.text, max(0, len(page.text) - COMPLETE_PAGE_TAIL_CHARS)) is not None


# ------------------------------------------------------------------------------------- text helpers

_HTML_SPACE = " \t\n\r\f"
_SOURCE_LINE_BREAK = re.compile(r"[\r\n]+")
_HIDDEN_TAGS = frozenset({"script", "style", "noscript", "template"})
_BR = object()  # marks a <br> while collecting text


def _has_class(name: str) -> str:
    """XPath predicate: the element's class list contains `name` (class lists may carry extra spaces)."""
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


def _is_wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def _join_source_lines(text: str) -> str:
    """Apply HTML's rule for line breaks in source text (CSS Text 3, segment break transformation).

    A line break and the spaces around it vanish between two wide (CJK) characters and become one
    space elsewhere; other spaces are kept as they are.
    """
    if "\n" not in text and "\r" not in text:
        return text
    joined: list[str] = []
    for line in _SOURCE_LINE_BREAK.split(text):
        line = line.strip(_HTML_SPACE)
        if not line:
            continue
        if joined and not (_is_wide(joined[-1][-1]) and _is_wide(line[0])):
            joined.append(" ")
        joined.append(line)
    return "".join(joined)


def _is_hidden(element: etree._Element) -> bool:
    if not isinstance(element.tag, str):  # comments and processing instructions
        return True
    if element.tag in _HIDDEN_TAGS:
        return True
    return element.tag == "a" and "a_show_full" in (element.get("class") or "")  # the "(展开全部)" link


def _collect_text(element: etree._Element, parts: list) -> None:
    if element.tag == "br":
        parts.append(_BR)
        return
    if _is_hidden(element):
        return
    if element.text:
        parts.append(element.text)
    for child in element:
        _collect_text(child, parts)
        if child.tail:
            parts.append(child.tail)


def _visible_lines(element: etree._Element) -> list[str]:
    """The element's visible text cut at each `<br>`, each line cleaned; empty lines left out."""
    parts: list = []
    _collect_text(element, parts)
    lines, current = [], []
    for part in [*parts, _BR]:
        if part is _BR:
            line = _join_source_lines("".join(current)).strip()
            if line:
                lines.append(line)
            current = []
        else:
            current.append(part)
    return lines


def _clean_inline(text: str) -> str:
    return _join_source_lines(text).strip()


# --------------------------------------------------------------------------------- subject sections

_TITLE_SPAN = etree.XPath("//h1//span[@property='v:itemreviewed']")
# id('…') uses libxml2's id index and /html/head/… stays in <head>: both avoid walking the whole page.
_TITLE_IN_HEAD = etree.XPath("/html/head/title")
_TITLE_ANYWHERE = etree.XPath("//title")
_LD_JSON_IN_HEAD = etree.XPath("/html/head/script[@type='application/ld+json']")
_LD_JSON_ANYWHERE = etree.XPath("//script[@type='application/ld+json']")
_TAG_BLOCK_LINKS = etree.XPath(f"id('db-tags-section')//a[{_has_class('tag')}]")
_INFO_BLOCK = etree.XPath("id('info')")
_LINK_REPORT = etree.XPath("id('link-report')")
_PAGE_URLS = etree.XPath(
    "/html/head/link[@rel='canonical']/@href | /html/head/meta[@property='og:url']/@content"
)
_FULL_TEXT_SPAN = etree.XPath(f".//span[{_has_class('all')}]")
_SHORT_TEXT_SPAN = etree.XPath(f".//span[{_has_class('short')}]")
_INTRO_BLOCKS = etree.XPath(f".//div[{_has_class('intro')}][not(ancestor::span[{_has_class('short')}])]")
_PARAGRAPHS = etree.XPath(".//p")
_CAPTCHA_MARKERS = etree.XPath(
    "//*[contains(@id, 'captcha') or contains(@name, 'captcha') or contains(@class, 'captcha')]"
)

_CRITERIA = re.compile(r"""criteria\s*=\s*(['"])(.*?)\1""")  # a literal first: re scans fast
_LD_JSON_FIELD = re.compile(r'"(name|url|@type)"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _section_after_heading(doc: lxml.html.HtmlElement, heading: str) -> lxml.html.HtmlElement | None:
    """The `div` right after the first `h2` whose text starts with `heading` (before any next `h2`)."""
    for h2 in doc.iter("h2"):
        if h2.text_content().strip().startswith(heading):
            for sibling in h2.itersiblings():
                if sibling.tag == "div":
                    return sibling
                if sibling.tag == "h2":
                    return None
            return None
    return None


def _section_text(section: lxml.html.HtmlElement | None) -> str:
    """The full text of a 内容简介 / 作者简介 section, one paragraph per line."""
    if section is None:
        return ""
    full = _FULL_TEXT_SPAN(section)
    root = full[0] if full else section
    intros = _INTRO_BLOCKS(root)
    if not intros:
        short = _SHORT_TEXT_SPAN(root)
        intros = short[:1] or [root]
    return "\n".join(_paragraphs(intros))


def _paragraphs(blocks: Iterable[lxml.html.HtmlElement]) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        for paragraph in _PARAGRAPHS(block) or [block]:
            lines.extend(_visible_lines(paragraph))
    return lines


def _find_summary(doc: lxml.html.HtmlElement) -> str:
    section = _section_after_heading(doc, SUMMARY_HEADING)
    if section is None:
        found = _LINK_REPORT(doc)
        section = found[0] if found else None
    return _section_text(section)


def _find_author_intro(doc: lxml.html.HtmlElement) -> str:
    return _section_text(_section_after_heading(doc, AUTHOR_INTRO_HEADING))


def _ld_json_fields(doc: lxml.html.HtmlElement) -> dict[str, str]:
    """`name` and `url` of the page's ld+json Book; tolerant of the malformed JSON Douban sometimes emits."""
    for script in _LD_JSON_IN_HEAD(doc) or _LD_JSON_ANYWHERE(doc):
        raw = script.text or ""
        try:
            data = json.loads(raw, strict=False)
        except json.JSONDecodeError:
            data = {key: _json_string(value) for key, value in _LD_JSON_FIELD.findall(raw)}
        if isinstance(data, dict) and data.get("@type", "Book") == "Book":
            return {key: str(data[key]).strip() for key in ("name", "url") if isinstance(data.get(key), str)}
    return {}


def _json_string(escaped: str) -> str:
    try:
        return json.loads(f'"{escaped}"', strict=False)
    except json.JSONDecodeError:
        return escaped


def _page_title(doc: lxml.html.HtmlElement) -> str:
    found = _TITLE_IN_HEAD(doc) or _TITLE_ANYWHERE(doc)
    return _clean_inline(found[0].text_content()) if found else ""


def _find_title(doc: lxml.html.HtmlElement, ld_json: dict[str, str]) -> str:
    for span in _TITLE_SPAN(doc):
        title = _clean_inline(span.text_content())
        if title:
            return title
    name = ld_json.get("name", "")
    if name:
        return _clean_inline(name)
    return _page_title(doc).removesuffix(TITLE_SUFFIX).strip()


def _criteria_entries(page_text: str) -> list[str]:
    """The `|`-separated entries of the `criteria` JS variable (HTML-escaped on the page), or []."""
    for match in _CRITERIA.finditer(page_text):
        before = page_text[match.start() - 1 : match.start()]
        if not (before.isalnum() or before in ("_", "$", ".")):  # not part of a longer name
            return [html.unescape(entry).strip() for entry in match.group(2).split("|")]
    return []


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))


def _find_tags(doc: lxml.html.HtmlElement, criteria: list[str]) -> tuple[list[str], str]:
    """Tags in page order and their source: "tag_block", "criteria", "tag_block+criteria" or "none"."""
    block_tags = _unique(_clean_inline(link.text_content()) for link in _TAG_BLOCK_LINKS(doc))
    criteria_tags = _unique(entry[2:].strip() for entry in criteria if entry.startswith("7:"))
    extra = [tag for tag in criteria_tags if tag not in set(block_tags)]
    sources = [name for name, used in (("tag_block", block_tags), ("criteria", extra)) if used]
    return block_tags + extra, "+".join(sources) or "none"


def _page_subject_ids(
    doc: lxml.html.HtmlElement, criteria: list[str], ld_json: dict[str, str]
) -> dict[str, str]:
    """The subject ids a page states about itself, keyed by where each was found."""
    ids: dict[str, str] = {}
    for entry in criteria:
        if entry.startswith("3:") and (found := _subject_id_in_path(entry[2:])):
            ids["criteria"] = found
    for address in _PAGE_URLS(doc):
        if found := _subject_id_in_path(address):
            ids.setdefault("canonical link", found)
    if (address := ld_json.get("url")) and (found := _subject_id_in_path(address)):
        ids["ld+json url"] = found
    return ids


def _info_fields(doc: lxml.html.HtmlElement) -> dict[str, str]:
    fields: dict[str, str] = {}
    last_key = None
    for info in _INFO_BLOCK(doc)[:1]:
        for line in _visible_lines(info):
            key, colon, value = line.replace("：", ":").partition(":")
            if colon and key.strip():
                last_key = key.strip()
                fields.setdefault(last_key, value.strip())
            elif last_key is not None:  # a value continued after a <br>
                fields[last_key] = f"{fields[last_key]} {line}".strip()
    return fields


def parse_info(body: bytes) -> dict[str, str]:
    """The `div#info` key/value pairs of a subject page (作者, 出版社, 出版年, ISBN, …); {} if none."""
    page = _load(body, "")
    return {} if isinstance(page, ParseRejection) else _info_fields(page.doc)


# ------------------------------------------------------------------------------------ classification

_TAG_INDEX_TABLES = etree.XPath(f"//table[{_has_class('tagCol')}]")
_LISTING_ITEMS = etree.XPath(f"//ul[{_has_class('subject-list')}]/li[{_has_class('subject-item')}]")
_H1 = etree.XPath("//h1")


def _is_login_wall(title: str) -> bool:
    return any(marker in title for marker in LOGIN_WALL_TITLES)


def _is_search(url: str, title: str) -> bool:
    parts = urlsplit(url)
    return (
        title.endswith("豆瓣搜索")
        or "subject_search" in parts.path
        or (parts.hostname or "").startswith("search.")
    )


def _is_works(path: str, title: str) -> bool:
    return bool(_WORKS_PATH.fullmatch(path)) or WORKS_TITLE_MARKER in title


def _has_subject_markers(page: _Page) -> bool:
    return bool(_TITLE_SPAN(page.doc) or _INFO_BLOCK(page.doc))


def _has_captcha(page: _Page) -> bool:
    return "captcha" in page.text and bool(_CAPTCHA_MARKERS(page.doc))  # the text test spares a tree walk


def _listing_heading(doc: lxml.html.HtmlElement) -> str | None:
    """The tag named by a listing page's `<h1>豆瓣图书标签: <tag></h1>`, else None."""
    for heading in _H1(doc):
        text = _clean_inline(heading.text_content()).replace("：", ":")
        prefix, colon, tag = text.partition(":")
        if colon and prefix.strip() == LISTING_HEADING_PREFIX and tag.strip():
            return tag.strip()
    return None


def _classify(page: _Page) -> PageKind:
    path = urlsplit(page.url).path
    if path.endswith("/robots.txt"):
        return PageKind.ROBOTS
    if _has_captcha(page):  # before the titles: Douban's captcha page is titled 禁止访问, like its IP block
        return PageKind.CAPTCHA
    title = _page_title(page.doc)
    if _is_login_wall(title):
        return PageKind.LOGIN_WALL
    if _is_search(page.url, title):
        return PageKind.SEARCH
    if _is_works(path, title):
        return PageKind.WORKS
    if _has_subject_markers(page):
        return PageKind.SUBJECT
    if BLOCKED_TITLE in title or LOGIN_WALL_PHRASE in page.text:
        return PageKind.LOGIN_WALL
    if path in ("/tag", "/tag/") or _TAG_INDEX_TABLES(page.doc):
        return PageKind.TAG_INDEX
    if _TAG_PATH.fullmatch(path) or _LISTING_ITEMS(page.doc) or _listing_heading(page.doc):
        return PageKind.TAG_LISTING
    return PageKind.OTHER


# The crawler classifies every page it fetches; a full lxml parse of a 100 KB subject page costs about as
# much as fetching it from a local server. These byte patterns recognise an ordinary UTF-8 subject page
# without parsing it: its <title> text and the title span in its <h1>. Douban writes its tags in lower case;
# a page that does not is parsed.
_FAST_TITLE = re.compile(rb"<title>([^<]*)</title>")
_FAST_TITLE_SPAN = re.compile(rb"<h1>\s*<span property=\"v:itemreviewed\">")
_FAST_ENCODING = "utf-8"
_FAST_CAPTCHA = re.compile(rb"captcha")  # a compiled literal scans these pages ~25 % faster than `in`
# Where the parser reads text, not tags: a marker inside one of these is not markup.
_TEXT_SPANS = ((b"<!--", b"-->"), (b"<script", b"</script"), (b"<style", b"</style"),
               (b"<textarea", b"</textarea"), (b"<title", b"</title"))


def _is_markup_at(body: bytes, position: int) -> bool:
    """False when `position` may lie inside a comment, a script, a style, a textarea or a title."""
    for opening, closing in _TEXT_SPANS:
        opened = body.rfind(opening, 0, position)
        if opened != -1 and body.find(closing, opened + len(opening), position) == -1:
            return False
    return True


def _is_plain_subject_page(body: bytes, url: str) -> bool:
    """True only when `_classify` would say SUBJECT: no captcha marker, the title span inside `<h1>`, and
    a UTF-8 `<title>` that names no login wall, search or works page. False means "parse it to know"."""
    if _FAST_CAPTCHA.search(body) or (span := _FAST_TITLE_SPAN.search(body)) is None:
        return False
    title = _FAST_TITLE.search(body)
    if title is None or page_encoding(body) != _FAST_ENCODING:
        return False
    if not (_is_markup_at(body, title.start()) and _is_markup_at(body, span.start())):
        return False
    try:
        text = _clean_inline(html.unescape(title.group(1).decode(_FAST_ENCODING)))
    except UnicodeDecodeError:
        return False
    return not (_is_login_wall(text) or _is_search(url, text) or _is_works(urlsplit(url).path, text))


def classify_page(body: bytes, url: str) -> PageKind:
    """What kind of Douban page `body` is (fetched from `url`)."""
    if urlsplit(url).path.endswith("/robots.txt"):
        return PageKind.ROBOTS
    if _is_plain_subject_page(body, url):
        return PageKind.SUBJECT
    page = _load(body, url)
    return PageKind.OTHER if isinstance(page, ParseRejection) else _classify(page)


def _load_expected(body: bytes, url: str, expected: PageKind, noun: str) -> _Page | ParseRejection:
    """Load a page and reject it unless it is a complete page of the `expected` kind."""
    page = _load(body, url)
    if isinstance(page, ParseRejection):
        return page
    kind = _classify(page)
    if kind in (PageKind.LOGIN_WALL, PageKind.CAPTCHA):
        return ParseRejection(
            url, kind.value, f"Douban served a {kind.value} page: {_page_title(page.doc)!r}"
        )
    if not _HTML_START.search(page.text, 0, HTML_START_CHARS):
        return ParseRejection(
            url, "not_html", f"no <html> or <!DOCTYPE html> at the start: {page.text[:60]!r}"
        )
    if not _is_complete(page):
        return ParseRejection(
            url, "truncated", f"no closing </html> tag: the page is cut or broken ({len(body)} bytes)"
        )
    if kind is not expected:
        return ParseRejection(
            url,
            f"not_a_{noun}_page:{kind.value}",
            f"the page is {kind.value}, titled {_page_title(page.doc)!r}",
        )
    return page


# ------------------------------------------------------------------------------------------ parsers


def parse_subject(body: bytes, url: str, fetched_at: str | None = None) -> Record | ParseRejection:
    """A Record from a book subject page, or the reason the page cannot give one."""
    page = _load_expected(body, url, PageKind.SUBJECT, "subject")
    if isinstance(page, ParseRejection):
        return page
    subject_id = subject_id_from_url(url)
    if subject_id is None:
        return ParseRejection(
            url, "not_a_subject_url", "expected http(s)://book.douban.com/subject/<digits>/"
        )
    criteria, ld_json = _criteria_entries(page.text), _ld_json_fields(page.doc)
    for where, page_id in _page_subject_ids(page.doc, criteria, ld_json).items():
        if page_id != subject_id:
            return ParseRejection(
                url, "id_mismatch", f"the URL names {subject_id} but the {where} names {page_id}"
            )
    title = _find_title(page.doc, ld_json)
    if not title:
        return ParseRejection(url, "no_title", "no v:itemreviewed span, ld+json name or <title> text")
    tags, tag_source = _find_tags(page.doc, criteria)
    return Record(
        id=subject_id,
        title=title,
        summary=_find_summary(page.doc),
        author_intro=_find_author_intro(page.doc),
        tags=tuple(tags),
        url=CANONICAL_SUBJECT_URL.format(subject_id),
        fetched_at=fetched_at,
        source="douban",
        tag_source=tag_source,
    )


_NEXT_PAGE_LINKS = etree.XPath(f"//div[{_has_class('paginator')}]//span[{_has_class('next')}]//a[@href]")
_ITEM_TITLE_LINKS = etree.XPath(f".//div[{_has_class('info')}]/h2//a/@href")
_ITEM_ANY_LINKS = etree.XPath(".//a/@href")


def _listing_start(url: str) -> int | None:
    values = parse_qs(urlsplit(url).query).get("start", ["0"])
    try:
        start = int(values[0])
    except ValueError:
        return None
    return start if start >= 0 else None


def _item_subject_id(item: lxml.html.HtmlElement, page_url: str) -> str | None:
    for links in (_ITEM_TITLE_LINKS, _ITEM_ANY_LINKS):
        for href in links(item):
            if (target := _join(page_url, href)) and (found := subject_id_from_url(target)):
                return found
    return None


def parse_listing(body: bytes, url: str) -> ListingPage | ParseRejection:
    """The subject ids (page order) of a tag listing page `/tag/<tag>?start=N&type=T`."""
    page = _load_expected(body, url, PageKind.TAG_LISTING, "listing")
    if isinstance(page, ParseRejection):
        return page
    url_tag, heading_tag = _tag_from_url(url), _listing_heading(page.doc)
    if url_tag and heading_tag and url_tag != heading_tag:
        return ParseRejection(
            url, "tag_mismatch", f"the URL names tag {url_tag!r} but the page {heading_tag!r}"
        )
    tag = url_tag or heading_tag
    if not tag:
        return ParseRejection(url, "no_tag", "neither the URL (/tag/<tag>) nor the <h1> names a tag")
    start = _listing_start(url)
    if start is None:
        return ParseRejection(url, "bad_url", "the start= parameter is not a non-negative integer")
    subject_ids = []
    for number, item in enumerate(_LISTING_ITEMS(page.doc), start=1):
        subject_id = _item_subject_id(item, url)
        if subject_id is None:
            return ParseRejection(
                url, "listing_item_without_subject", f"item {number} has no /subject/<id>/ link"
            )
        subject_ids.append(subject_id)
    return ListingPage(
        tag=tag, start=start, subject_ids=_unique(subject_ids), has_next=bool(_NEXT_PAGE_LINKS(page.doc))
    )


_TAG_TABLE_LINKS = etree.XPath(f"//table[{_has_class('tagCol')}]//td//a[@href]")
_ALL_LINKS = etree.XPath("//a[@href]")


def _linked_tags(links: Iterable[lxml.html.HtmlElement], page_url: str) -> list[str]:
    """Tag names addressed by `/tag/<tag>` links (the href, not the link text, is what a crawler follows)."""
    names = []
    for link in links:
        target = _join(page_url, link.get("href"))
        if target and _book_host(target) is not None and (tag := _tag_from_url(target)):
            names.append(tag)
    return _unique(names)


def parse_tag_index(body: bytes, url: str) -> list[str] | ParseRejection:
    """Tag names in page order from the tag index `/tag/` (its `table.tagCol`, else any `/tag/<x>` link)."""
    page = _load_expected(body, url, PageKind.TAG_INDEX, "tag_index")
    if isinstance(page, ParseRejection):
        return page
    tags = _linked_tags(_TAG_TABLE_LINKS(page.doc), url) or _linked_tags(_ALL_LINKS(page.doc), url)
    if not tags:
        return ParseRejection(url, "no_tags", "the tag index has no /tag/<tag> links")
    return tags
