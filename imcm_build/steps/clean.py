"""Clean: raw Douban fields → one normalised text per book.

`text` = cleaned summary, then a blank line ("\\n\\n"), then the cleaned author intro when it is non-empty.
A blank line marks the boundary between the two fields; inside a field paragraphs are separated by a
single "\\n", so the boundary can always be found again.

Each field (and the title) goes through `imcm_build.text.clean_field` / `clean_title`, which the
prediction path shares, in this order:

1. HTML entities are unescaped until nothing changes (`&amp;#147;` → `&#147;` → `“`), so escaped tags
   (`&lt;br&gt;`) are stripped by step 2 too.
2. Tags of known HTML elements (`<br>`, `</p>`, `<p class=x>`, `<CENTER>`) are removed; block-level
   ones become a paragraph break. Only known element names count, so `a < b`, `<十个小黑人>` (a Chinese
   title in angle brackets) or `<现>` stay as they are.
3. Line breaks of every kind (\\r, \\r\\n, \\v, \\f, \\x1c-\\x1e, \\x85, U+2028/9) become "\\n"; then
   control, format (zero-width) and private-use characters (Word symbol-font bullets) are removed.
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

The per-book work (`clean_book`) runs in the build's worker processes.
Optionally (`to_simplified`) title and text are converted to simplified Chinese with zhconv.
A document whose cleaned text is empty is dropped with reason "empty_text".
The raw `summary` and `author_intro` fields are left untouched as provenance.
"""

from __future__ import annotations

from collections import Counter

from imcm_build.document import Document
from imcm_build.pipeline import parallel_map
from imcm_build.report import StepReport
from imcm_build.text import (
    FIELD_SEPARATOR,
    clean_field,
    clean_title,
    join_fields,
    normalize_unicode,
    to_simplified_chinese,
)

__all__ = ["Clean", "clean_field", "clean_title", "normalize_unicode"]


def clean_book(fields: tuple[str, str, str, bool]) -> tuple[str, str, dict[str, bool]]:
    """(title, summary, author intro, to_simplified) → (text, title, facts about the cleaning): the
    per-document work, sent to the build's workers."""
    raw_title, raw_summary, raw_intro, to_simplified = fields
    summary = clean_field(raw_summary)
    intro = clean_field(raw_intro)
    text = join_fields(summary.text, intro.text)
    title = clean_title(raw_title)
    simplified = False
    if to_simplified:
        simplified_text, simplified_title = to_simplified_chinese(text), to_simplified_chinese(title)
        simplified = (simplified_text, simplified_title) != (text, title)
        text, title = simplified_text, simplified_title
    facts = {
        "with_author_intro": bool(intro.text),
        "truncated_summary": summary.truncated,
        "truncated_author_intro": intro.truncated,
        "simplified": simplified,
    }
    return text, title, facts


class Clean:
    """Build step: summary + author intro → `doc.text`; cleans `doc.title`; drops empty texts."""

    name = "clean"

    def __init__(self, to_simplified: bool = False) -> None:
        self.to_simplified = to_simplified

    def run(self, docs: list[Document], report: StepReport) -> list[Document]:
        fields = [(doc.title, doc.summary, doc.author_intro, self.to_simplified) for doc in docs]
        counts: Counter[str] = Counter()
        kept = []
        for doc, (text, title, facts) in zip(docs, parallel_map(clean_book, fields, desc="clean"), strict=True):
            doc.text, doc.title = text, title
            counts.update(fact for fact, present in facts.items() if present)
            if facts["truncated_summary"] or facts["truncated_author_intro"]:
                doc.meta["truncated"] = True
                counts["truncated_documents"] += 1
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
