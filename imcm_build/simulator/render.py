"""Douban book pages rendered from the simulator's own templates (`templates/*`, `string.Template` files).

The DOM follows real saved pages (see /work/shared/data/douban-html): subject pages of the 2021 era carry a
visible `div#db-tags-section` with the first 8 tags; 2024-era pages have no tag block but a `div#authors`
creators section. Both carry every tag in the `criteria` ad-targeting JS variable. Real Douban caps
`criteria` at about 10 tags; the simulator keeps all of them so a crawl → parse round trip is lossless.

Escaping — every record string is escaped for the place it lands in:
- HTML text and attributes: `html.escape` (quotes included).
- `criteria = '7:tag|7:tag|3:/subject/<id>/'`: each tag is HTML-escaped, as Douban does (its tag pages show
  `&amp;` inside criteria), and `|`, `\\` and control characters are written as numeric character
  references too, so the JS string never holds a raw separator, quote, backslash or `<`. Decode an item with
  `html.unescape` after splitting on `|` and dropping the `7:` prefix.
- JSON inside `<script>` (ld+json, search `window.__DATA__`): `<`, `>` and `&` become `\\u003c`-style escapes.

The simulator's records have no bibliographic fields, so `div#info` and the listing `div.pub` lines are
rendered empty rather than invented; a record without a summary gets no 内容简介 section and one without
an author intro no 作者简介 section. Pages are padded with inert boilerplate (an inline style sheet) to the
sizes of real pages: subject pages 70–130 KB (about 100 KB on average), listings 50–70 KB.
"""

from __future__ import annotations

import html
import json
import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from string import Template
from urllib.parse import quote

from imcm_build.records import Record

ERAS = ("2021", "2024")
ERA_CHOICES = (*ERAS, "mixed")
PAGE_SIZE = 20  # books per tag-listing page
LISTING_START_CAP = 1000  # like Douban, listings are empty from start=1000 on
VISIBLE_TAGS_2021 = 8
INTRO_FOLD_CHARS = 100  # longer intros are folded into span.short + span.all.hidden
INTRO_SHORT_CHARS = 80  # how much of a folded intro span.short shows
LISTING_SNIPPET_CHARS = 80
SORT_TYPES = {"T": "综合排序", "R": "按出版日期排序", "S": "按评价排序"}
SUBJECT_PAGE_BYTES = (70_000, 130_000)
LISTING_PAGE_BYTES = (50_000, 70_000)
REC_ITEMS = 10
RELATED_TAGS = 8
SEARCH_RESULTS = 15
PADDING_MARK = "<!--simulator-padding-->"

_CRITERIA_SPECIALS = re.compile(r"[|\\\x00-\x1f\x7f\u2028\u2029]")
_JSON_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


@cache
def template(name: str) -> Template:
    """One template file from the package's templates/ folder."""
    text = resources.files("imcm_build.simulator").joinpath("templates", name).read_text(encoding="utf-8")
    return Template(text)


def fill(name: str, **values: object) -> str:
    return template(name).substitute(values)


def era_of(subject_id: str, era: str) -> str:
    """The page era of one subject: fixed, or for "mixed" chosen by the parity of the id (even → 2024)."""
    if era in ERAS:
        return era
    if era == "mixed":
        return "2024" if int(subject_id) % 2 == 0 else "2021"
    raise ValueError(f"unknown era {era!r}: expected one of {', '.join(ERA_CHOICES)}")


def escape(text: str) -> str:
    return html.escape(text, quote=True)


def criteria_item(text: str) -> str:
    """A value for Douban's single-quoted `criteria` JS string (see the module docstring)."""
    escaped = html.escape(text, quote=True)
    return _CRITERIA_SPECIALS.sub(lambda match: f"&#{ord(match.group())};", escaped)


def script_json(value: object, indent: int | None = None) -> str:
    """JSON that is safe inside a `<script>` element."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    return re.sub(r"[<>&]", lambda match: _JSON_SCRIPT_ESCAPES[match.group()], text)


def tag_path(tag: str) -> str:
    return "/tag/" + quote(tag, safe="")


def listing_href(tag: str, start: int, sort_type: str = "T") -> str:
    return escape(f"{tag_path(tag)}?start={start}&type={sort_type}")


def paragraphs_html(lines: Iterable[str]) -> str:
    return "    ".join(f"<p>{escape(line)}</p>" for line in lines)


def folded_lines(lines: Sequence[str], limit: int) -> list[str]:
    """The first `limit` characters of the lines, the last one cut and ended with "..." (Douban's span.short)."""
    shown: list[str] = []
    remaining = limit
    for line in lines:
        if len(line) >= remaining:
            shown.append(line[:remaining] + "...")
            return shown
        shown.append(line)
        remaining -= len(line)
    return shown


def intro_html(text: str) -> str:
    """An intro as Douban renders it: one div.intro, or span.short + span.all.hidden when long."""
    lines = text.split("\n")
    if len(text) <= INTRO_FOLD_CHARS:
        return fill("intro_short.html", paragraphs=paragraphs_html(lines))
    short = paragraphs_html(folded_lines(lines, INTRO_SHORT_CHARS))
    return fill("intro_long.html", short_paragraphs=short, paragraphs=paragraphs_html(lines))


def page_target_bytes(seed: int, key: str, bounds: tuple[int, int]) -> int:
    return random.Random(f"{seed}:{key}").randint(*bounds)


@cache
def _padding_rules() -> tuple[bytes, tuple[int, ...]]:
    """An inert style sheet of sprite rules and the byte offsets where each rule ends."""
    rules = []
    for number in range(1600):
        x, y = (number % 24) * 24, (number // 24) * 24
        rules.append(
            f".ll-sprite-{number:04d}{{background:url(https://img1.doubanio.com/f/book/sprites/"
            f"s{number // 200:02d}.png) -{x}px -{y}px no-repeat;width:24px;height:24px;display:inline-block}}\n"
        )
    data = "".join(rules).encode("ascii")
    ends, total = [], 0
    for rule in rules:
        total += len(rule)
        ends.append(total)
    return data, tuple(ends)


def pad_to(page: str, target: int) -> bytes:
    """Encode `page`, replacing PADDING_MARK with whole padding rules so the page is about `target` bytes."""
    head, _, tail = page.encode("utf-8").partition(PADDING_MARK.encode("ascii"))
    data, ends = _padding_rules()
    wanted = target - len(head) - len(tail)
    usable = [end for end in ends if end <= wanted]
    return head + data[: usable[-1] if usable else 0] + tail


class SiteRenderer:
    """Renders every page of the simulated site for one record set, with links under `site`."""

    def __init__(self, records: Sequence[Record], site: str, era: str = "mixed", seed: int = 0) -> None:
        if era not in ERA_CHOICES:
            raise ValueError(f"unknown era {era!r}: expected one of {', '.join(ERA_CHOICES)}")
        self.site = site.rstrip("/")
        self.era = era
        self.seed = seed
        self.records = sorted(records, key=lambda record: int(record.id))
        self.by_id = {record.id: record for record in self.records}
        self._position = {record.id: index for index, record in enumerate(self.records)}
        self.tag_members: dict[str, list[Record]] = {}
        for record in self.records:
            for tag in dict.fromkeys(record.tags):
                self.tag_members.setdefault(tag, []).append(record)
        counts = Counter({tag: len(members) for tag, members in self.tag_members.items()})
        self.tags_by_frequency = [tag for tag, _ in sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))]
        self._tag_index: bytes | None = None

    # ----- shared page frame -----

    def _page(self, title: str, body: str, criteria: str, ad_slots: Sequence[str], year: str,
              meta: str = "", head_extra: str = "") -> str:
        return fill(
            "page.html",
            title=title,
            meta=meta,
            head_extra=head_extra,
            global_nav=fill("global_nav.html", site=self.site),
            book_nav=fill("book_nav.html", site=self.site, year=year),
            body=body,
            footer=fill("footer.html", site=self.site, year=year),
            criteria=criteria,
            ad_slots=", ".join(f"'{slot}'" for slot in ad_slots),
            analytics=fill("analytics.html"),
        )

    def _site_year(self) -> str:
        return self.era if self.era in ERAS else "2024"

    # ----- subject pages -----

    def subject_page(self, record: Record) -> bytes:
        era = era_of(record.id, self.era)
        title = escape(record.title)
        values = {"site": self.site, "sid": record.id, "title": title}
        body = fill(
            "subject_body.html",
            **values,
            summary_section=self._summary_section(record),
            authors_section=fill("authors_section.html", title=title) if era == "2024" else "",
            author_intro_section=(
                fill("author_intro_section.html", intro=intro_html(record.author_intro)) if record.author_intro else ""
            ),
            tags_section=self._tags_section(record.tags) if era == "2021" else "",
            rec_section=self._rec_section(record),
            padding=PADDING_MARK,
        )
        head = fill("subject_head.html", **values, ld_json=self._ld_json(record),
                    og_description=escape(_cut(record.summary, INTRO_FOLD_CHARS)))
        criteria = "|".join([*(f"7:{criteria_item(tag)}" for tag in record.tags), f"3:/subject/{record.id}/"])
        page = self._page(
            f"{title} (豆瓣)", body, criteria,
            ("dale_book_subject_top_icon", "dale_book_subject_top_right", "dale_book_subject_middle_mini"),
            year=era, meta=fill("subject_meta.html", **values), head_extra=head,
        )
        return pad_to(page, page_target_bytes(self.seed, f"subject:{record.id}", SUBJECT_PAGE_BYTES))

    def _summary_section(self, record: Record) -> str:
        if not record.summary:
            return ""
        return fill("summary_section.html", site=self.site, sid=record.id, intro=intro_html(record.summary))

    def _tags_section(self, tags: Sequence[str]) -> str:
        if not tags:
            return ""
        links = "".join(
            fill("tag_link.html", href=escape(quote(tag, safe="")), tag=escape(tag)) for tag in tags[:VISIBLE_TAGS_2021]
        )
        return fill("tags_section.html", count=len(tags), links=links)

    def _rec_section(self, record: Record) -> str:
        others = self._neighbours(record)
        if not others:
            return ""
        items = "".join(
            fill("rec_item.html", site=self.site, sid=other.id, title=escape(other.title), position=position)
            for position, other in enumerate(others)
        )
        return fill("rec_section.html", title=escape(record.title), items=items)

    def _neighbours(self, record: Record) -> list[Record]:
        start = self._position[record.id] + 1
        count = min(REC_ITEMS, len(self.records) - 1)
        return [self.records[(start + offset) % len(self.records)] for offset in range(count)]

    def _ld_json(self, record: Record) -> str:
        url = f"{self.site}/subject/{record.id}/"
        book = {"@context": "http://schema.org", "@type": "Book", "workExample": [], "name": record.title,
                "author": [], "url": url, "sameAs": url}
        return script_json(book, indent=2)

    # ----- tag listings and the tag index -----

    def listing_page(self, tag: str, start: int, sort_type: str = "T") -> bytes:
        members = self.tag_members.get(tag, [])
        shown = members[start : start + PAGE_SIZE] if start < LISTING_START_CAP else []
        if shown:
            items = "".join(self._listing_item(record, position) for position, record in enumerate(shown))
            listing = fill("listing_items.html", items=items)
            paginator = self._paginator(tag, start, len(members), sort_type)
        else:
            listing, paginator = fill("listing_empty.html"), ""
        related = "".join(
            f'\n      <a href="{escape(tag_path(other))}">{escape(other)}</a>'
            for other in self.tags_by_frequency[: RELATED_TAGS + 1] if other != tag
        )
        body = fill(
            "listing_body.html", tag=escape(tag), sort_links=self._sort_links(tag, sort_type), items=listing,
            paginator=paginator, related_tags=related, padding=PADDING_MARK,
        )
        criteria = criteria_item(f"3:{tag_path(tag)}?start={start}&type={sort_type}")
        page = self._page(f"豆瓣图书标签: {escape(tag)}", body, criteria,
                          ("dale_book_tag_top_right", "dale_book_tag_bottom_right"), year=self._site_year())
        return pad_to(page, page_target_bytes(self.seed, f"tag:{tag}:{start}", LISTING_PAGE_BYTES))

    def _listing_item(self, record: Record, position: int) -> str:
        snippet = ""
        if record.summary:
            flat = record.summary.replace("\n", " ")
            snippet = f"    <p>{escape(_cut(flat, LISTING_SNIPPET_CHARS))} </p>"
        return fill("listing_item.html", site=self.site, sid=record.id, position=position,
                    title=escape(record.title), pub="", snippet=snippet)

    def _sort_links(self, tag: str, current: str) -> str:
        parts = [
            label if code == current else f'<a href="{escape(tag_path(tag))}?type={code}">{label}</a>'
            for code, label in SORT_TYPES.items()
        ]
        return "\n          &nbsp;/&nbsp;\n          ".join(parts)

    def _paginator(self, tag: str, start: int, total: int, sort_type: str) -> str:
        """Douban's paginator: it links pages past start=1000 even though those are served empty."""
        pages = math.ceil(total / PAGE_SIZE)
        current = start // PAGE_SIZE + 1
        shown = sorted({*range(1, min(pages, 9) + 1), *range(max(1, current - 4), min(pages, current + 4) + 1),
                        *range(max(1, pages - 1), pages + 1)})
        links, previous = [], 0
        for number in shown:
            if number - previous > 1:
                links.append('<span class="break">...</span>')
            if number == current:
                links.append(f'<span class="thispage">{number}</span>')
            else:
                links.append(f'<a href="{listing_href(tag, (number - 1) * PAGE_SIZE, sort_type)}" >{number}</a>')
            previous = number
        return fill("paginator.html", prev=self._step_link("prev", "&lt;前页", tag, start - PAGE_SIZE, start > 0, sort_type),
                    pages="\n        ".join(links),
                    next=self._step_link("next", "后页&gt;", tag, start + PAGE_SIZE, start + PAGE_SIZE < total, sort_type))

    @staticmethod
    def _step_link(kind: str, label: str, tag: str, start: int, enabled: bool, sort_type: str) -> str:
        if not enabled:
            return f'<span class="{kind}">{label}</span>'
        href = listing_href(tag, max(start, 0), sort_type)
        return f'<span class="{kind}">\n            <link rel="{kind}" href="{href}"/>\n            <a href="{href}" >{label}</a>\n        </span>'

    def tag_index_page(self) -> bytes:
        if self._tag_index is None:
            self._tag_index = self._render_tag_index()
        return self._tag_index

    def _render_tag_index(self) -> bytes:
        cells = [
            f'<td><a href="{escape(tag_path(tag))}">{escape(tag)}</a><b>({len(self.tag_members[tag])})</b></td>'
            for tag in self.tags_by_frequency
        ]
        rows = "\n".join(f"        <tr>{''.join(cells[i : i + 4])}</tr>" for i in range(0, len(cells), 4))
        body = fill("tag_index_body.html", rows=rows)
        return self._page("豆瓣图书标签", body, "3:/tag/", ("dale_book_tag_top_right",), year=self._site_year()).encode()

    # ----- other Douban pages the crawler must not need -----

    def works_page(self, record: Record) -> bytes:
        body = fill("works_body.html", site=self.site, sid=record.id, title=escape(record.title),
                    items=self._listing_item(record, 0))
        page = self._page(f"{escape(record.title)} 的全部版本 (豆瓣)", body, f"3:/works/{record.id}",
                          ("dale_book_subject_top_right",), year=self._site_year())
        return page.encode()

    def search_page(self, query: str) -> bytes:
        needle = query.casefold()
        hits = [record for record in self.records if needle and needle in record.title.casefold()]
        items = [
            {"abstract": "", "abstract_2": "", "cover_url": "", "id": int(record.id), "labels": [],
             "rating": {"count": 0, "rating_info": "评价人数不足", "star_count": 0, "value": 0},
             "title": record.title, "tpl_name": "search_subject", "url": f"{self.site}/subject/{record.id}/"}
            for record in hits[:SEARCH_RESULTS]
        ]
        data = {"count": len(items), "error_info": "", "items": items, "start": 0, "text": query, "total": len(hits)}
        page = fill("search_page.html", query=escape(query), data=script_json(data),
                    global_nav=fill("global_nav.html", site=self.site))
        return page.encode()

    def login_wall_page(self, original: str) -> bytes:
        return fill("login_wall.html", original=escape(original), redirect=escape(quote(original, safe=""))).encode()

    def captcha_page(self, original: str, captcha_id: str) -> bytes:
        return fill("captcha.html", original=escape(original), captcha_id=escape(captcha_id)).encode()

    def robots_txt(self) -> bytes:
        return fill("robots.txt", site=self.site).encode()


def error_page(title: str, message: str) -> bytes:
    return fill("error_page.html", title=escape(title), message=escape(message)).encode()


MALFORMED_BODY = (
    b'<body>\n<div id="wrapper"><h1><span property="v:itemreviewed"\n<div class="intro"><p>'
    b"\xff\xfe\xfd</span></h1></tr></table><<div <p>>\n<script>var criteria = '7:"
)


def malformed(page: bytes) -> bytes:
    """Broken HTML: the page's head kept, its body replaced by unclosed tags and invalid UTF-8."""
    head, _, _ = page.partition(b"<body>")
    return head + MALFORMED_BODY


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
