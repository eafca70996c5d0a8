"""The one type that flows through the build steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from imcm_build.records import Record


@dataclass
class Document:
    """A book on its way to the release; each step fills or changes some fields.

    `text` starts as the raw joined text and is replaced by the cleaned text; `tokens` is filled by
    the tokenize step and `n_words` (word tokens excluding punctuation/whitespace) with it; `labels`
    is filled by the labels step from `tags`; `split` by the split step.
    """

    id: str
    title: str
    summary: str
    author_intro: str
    tags: list[str]
    url: str = ""
    origin: str = ""  # file:line of the source record
    text: str = ""
    tokens: list[str] = field(default_factory=list)
    n_words: int = 0
    labels: list[str] = field(default_factory=list)
    split: str = ""
    meta: dict[str, Any] = field(default_factory=dict)  # provenance: merged ids, tag source, ...

    @classmethod
    def from_record(cls, record: Record) -> Document:
        meta: dict[str, Any] = {}
        for key in ("fetched_at", "source", "tag_source"):
            value = getattr(record, key)
            if value is not None:
                meta[key] = value
        return cls(
            id=record.id,
            title=record.title,
            summary=record.summary,
            author_intro=record.author_intro,
            tags=list(record.tags),
            url=record.url,
            origin=record.origin,
            meta=meta,
        )
