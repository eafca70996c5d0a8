"""Clean: raw Douban fields → one normalised text per book.

`text` = cleaned summary, then a blank line ("\\n\\n"), then the cleaned author intro when it is non-empty.
A blank line marks the boundary between the two fields; inside a field paragraphs are separated by a
single "\\n", so the boundary can always be found again.

Each field (and the title) goes through, in this order:

1. HTML entities are unescaped until nothing changes (`&amp;#147;` → `&#147;` → `“`), so escaped tags
   (`&lt;br&gt;`) are stripped by step 2 too.
2. Tags of known HTML elements (`<br>`, `</p>`, `<p class=x>`, `<CENTER>`) are removed; block-level
   ones become a paragraph break. Only known element names count, so `a < b`, `<十个小黑人>` (a Chinese
   title in angle brackets) or `<现>` stay as they are.
3. Control, format (zero-width) and private-use characters (Word symbol-font bullets) are removed.
4. Unicode normalisation: NFKC, except that full-width punctuation and symbols (U+FF01–U+FF5E that are
   not letters or digits, e.g. ，：；！？（）～) and the ellipsis "…" are kept. Plain NFKC would turn
   them into ASCII (，→ , and … → ...), which changes how Chinese text looks and how jieba cuts it;
   NFKC is still wanted for everything else: full-width letters/digits (Ａ１ → A1), Kangxi radicals
   that look like ideographs (⼀ → 一), half-width katakana, the ideographic space.
5. Douban's "expand" UI residue "(展开全部)" / "（展开全部）" / "展开全部" is removed.
6. Whitespace: each run of spaces/tabs becomes one space, lines are stripped, empty lines dropped, and
   paragraphs are joined by a single "\\n" (the title becomes a single line).
7. A trailing truncation mark ("...", "…", "……") means the page showed a shortened text: the mark is
   removed and `doc.meta["truncated"] = True`.

Optionally (`to_simplified`) title and text are converted to simplified Chinese with zhconv.
A document whose cleaned text is empty is dropped with reason "empty_text".
The raw `summary` and `author_intro` fields are left untouched as provenance.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

import zhconv

from imcm_build.document import Document
from imcm_build.report import StepReport

FIELD_SEPARATOR = "\n\n"
MAX_UNESCAPE_ROUNDS = 5

_BLOCK_TAGS = (
    "address|article|blockquote|br|center|dd|div|dl|dt|h[1-6]|hr|li|ol|p|pre|section|table|tbody|td|th|tr|ul"
)
_INLINE_TAGS = "a|abbr|b|big|cite|code|em|font|i|img|s|small|span|strike|strong|sub|sup|tt|u"
_BLOCK_TAG = re.compile(rf"</?(?:{_BLOCK_TAGS})(?:\s[^<>]*)?/?>", re.IGNORECASE)
_INLINE_TAG = re.compile(rf"</?(?:{_INLINE_TAGS})(?:\s[^<>]*)?/?>", re.IGNORECASE)
_EXPAND_RESIDUE = re.compile(r"[(（]\s*展开全部\s*[)）]|展开全部")
_TRUNCATION_MARK = re.compile(r"\s*(?:\.{3,}|…+)$")
_INLINE_SPACE = re.compile(r"[^\S\n]+")
_LINE_BREAKS = re.compile(r"\r\n|[\r\u2028\u2029\x0b\x0c\x1c-\x1e\x85]")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Co"})

# Full-width punctuation/symbols and the ellipsis survive NFKC: they are swapped for private-use
# placeholders (private-use characters are removed before this point, so none can clash), the text is
# NFKC-normalised, and the placeholders are swapped back.
_KEPT_FROM_NFKC = [chr(code) for code in range(0xFF01, 0xFF5F) if not chr(code).isalnum()] + ["…", "‥"]
_PLACEHOLDER_BASE = 0xE000
_TO_PLACEHOLDER = {ord(ch): _PLACEHOLDER_BASE + i for i, ch in enumerate(_KEPT_FROM_NFKC)}
_FROM_PLACEHOLDER = {placeholder: original for original, placeholder in _TO_PLACEHOLDER.items()}


def unescape_entities(text: str) -> str:
    """html.unescape until the text stops changing (double escapes like `&amp;#147;`)."""
    for _ in range(MAX_UNESCAPE_ROUNDS):
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    return text


def strip_tags(text: str) -> str:
    """Remove known HTML tags; block-level tags become a line break. Lone '<' and '<中文>' are kept."""
    return _INLINE_TAG.sub("", _BLOCK_TAG.sub("\n", text))


def remove_invisible(text: str) -> str:
    """Drop control (except newline/tab), zero-width/format and private-use characters."""
    if text.isprintable():
        return text
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in _INVISIBLE_CATEGORIES)


def normalize_unicode(text: str) -> str:
    """NFKC, but full-width punctuation/symbols (，：？（）～ …) and the ellipsis '…' are kept as they are."""
    protected = text.translate(_TO_PLACEHOLDER)
    return unicodedata.normalize("NFKC", protected).translate(_FROM_PLACEHOLDER)


def collapse_whitespace(text: str) -> str:
    """One space inside lines, stripped lines, no empty lines, paragraphs joined by one '\\n'."""
    lines = (_INLINE_SPACE.sub(" ", line).strip() for line in _LINE_BREAKS.sub("\n", text).split("\n"))
    return "\n".join(line for line in lines if line)


@dataclass
class CleanedField:
    text: str
    truncated: bool = False


def clean_field(raw: str) -> CleanedField:
    """Clean one summary / author intro (see the module docstring for the order of operations)."""
    text = normalize_unicode(remove_invisible(strip_tags(unescape_entities(raw))))
    text = collapse_whitespace(_EXPAND_RESIDUE.sub("", text))
    shortened = _TRUNCATION_MARK.sub("", text)
    return CleanedField(shortened.rstrip(), truncated=shortened != text)


def clean_title(raw: str) -> str:
    """Entities, tags, invisible characters, NFKC (as for text) and whitespace, on one line."""
    text = normalize_unicode(remove_invisible(strip_tags(unescape_entities(raw))))
    return " ".join(text.split())


class Clean:
    """Build step: summary + author intro → `doc.text`; cleans `doc.title`; drops empty texts."""

    name = "clean"

    def __init__(self, to_simplified: bool = False) -> None:
        self.to_simplified = to_simplified

    def run(self, docs: list[Document], report: StepReport) -> list[Document]:
        counts: Counter[str] = Counter()
        kept = []
        for doc in docs:
            self._clean(doc, counts)
            if doc.text:
                kept.append(doc)
            else:
                report.drop("empty_text", doc.id)
        report.notes.update(
            {
                "to_simplified": self.to_simplified,
                "field_separator": FIELD_SEPARATOR,
                "truncated_documents": counts["truncated_documents"],
                "truncated_summaries": counts["truncated_summary"],
                "truncated_author_intros": counts["truncated_author_intro"],
                "documents_with_author_intro": counts["with_author_intro"],
                "documents_changed_by_simplification": counts["simplified"],
            }
        )
        return kept

    def _clean(self, doc: Document, counts: Counter[str]) -> None:
        summary = clean_field(doc.summary)
        intro = clean_field(doc.author_intro)
        parts = [part for part in (summary.text, intro.text) if part]
        text = FIELD_SEPARATOR.join(parts)
        title = clean_title(doc.title)
        if self.to_simplified:
            simplified_text, simplified_title = zhconv.convert(text, "zh-cn"), zhconv.convert(title, "zh-cn")
            counts["simplified"] += (simplified_text, simplified_title) != (text, title)
            text, title = simplified_text, simplified_title
        doc.text, doc.title = text, title
        counts["with_author_intro"] += bool(intro.text)
        counts["truncated_summary"] += summary.truncated
        counts["truncated_author_intro"] += intro.truncated
        if summary.truncated or intro.truncated:
            doc.meta["truncated"] = True
            counts["truncated_documents"] += 1
