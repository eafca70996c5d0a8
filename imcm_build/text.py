"""Raw text → clean text → tokens: shared by the build and by `imcm_train` prediction, so both agree.

The cleaning rules are documented in `imcm_build/steps/clean.py` (the build step that applies them).
"""

from __future__ import annotations

import html
import logging
import re
import unicodedata
from dataclasses import dataclass
from functools import cache

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
_LINE_BREAK = re.compile(r"[\r\u2028\u2029\x0b\x0c\x1c-\x1e\x85]")  # a character class: found ~4x faster
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


def normalize_line_breaks(text: str) -> str:
    """Every line break (\\r\\n, \\r, \\v, \\f, \\x1c-\\x1e, \\x85, U+2028, U+2029) becomes '\\n'.

    Runs before `remove_invisible`, which would otherwise delete the control-character breaks and glue
    the words on either side together.
    """
    return _LINE_BREAKS.sub("\n", text) if _LINE_BREAK.search(text) else text


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
    """One space inside lines, stripped lines, no empty lines, paragraphs joined by one '\\n' (line breaks
    already normalised to '\\n')."""
    lines = (_INLINE_SPACE.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


@dataclass
class CleanedField:
    text: str
    truncated: bool = False


def clean_field(raw: str) -> CleanedField:
    """Clean one summary / author intro (see the module docstring for the order of operations)."""
    text = normalize_unicode(remove_invisible(normalize_line_breaks(strip_tags(unescape_entities(raw)))))
    text = collapse_whitespace(_EXPAND_RESIDUE.sub("", text))
    shortened = _TRUNCATION_MARK.sub("", text)
    return CleanedField(shortened.rstrip(), truncated=shortened != text)


def clean_title(raw: str) -> str:
    """Entities, tags, invisible characters, NFKC (as for text) and whitespace, on one line."""
    text = normalize_unicode(remove_invisible(normalize_line_breaks(strip_tags(unescape_entities(raw)))))
    return " ".join(text.split())




def join_fields(summary: str, author_intro: str) -> str:
    """The document text: summary, a blank line, then the author introduction when there is one."""
    return FIELD_SEPARATOR.join(part for part in (summary, author_intro) if part)


def clean_text(summary: str, author_intro: str = "") -> str:
    """What the build's clean step makes of a book's two fields (without its drop/truncation bookkeeping)."""
    return join_fields(clean_field(summary).text, clean_field(author_intro).text)


def to_simplified_chinese(text: str) -> str:
    """Traditional → simplified Chinese (zhconv), as `--to-simplified` builds convert cleaned text."""
    import zhconv

    return zhconv.convert(text, "zh-cn")


def text_to_tokens(raw_text: str, to_simplified: bool = False) -> list[str]:
    """Clean (and, for a `--to-simplified` release, convert) then tokenize raw user text exactly as the
    build does for a summary."""
    text = clean_text(raw_text)
    return tokenize(to_simplified_chinese(text) if to_simplified else text)


_SPACE = re.compile(r"\s+")
# a letter or a digit: the same set as Unicode categories L* and N* (checked over every code point)
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")


@cache
def load_tokenizer():  # noqa: ANN201 - jieba has no types
    """Load jieba and its dictionary once per process (about a second); later calls are free."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def is_word(token: str) -> bool:
    """A token counts as a word unless it is only punctuation, symbols or whitespace."""
    return _LETTER_OR_DIGIT.search(token) is not None


def tokenize(text: str) -> list[str]:
    """jieba accurate mode (no HMM change, no paddle); whitespace tokens removed.

    Tokens never contain spaces, so `" ".join(tokens)` round-trips through `str.split()`.
    """
    tokens = []
    for token in load_tokenizer().lcut(text, cut_all=False):
        token = _SPACE.sub("", token)
        if token:
            tokens.append(token)
    return tokens


def count_words(tokens: list[str]) -> int:
    """How many tokens are words (`is_word`)."""
    return len(list(filter(_LETTER_OR_DIGIT.search, tokens)))


# a whitespace-free run holding a letter or digit: one match per word token of a space-joined token string
_WORD_IN_JOINED = re.compile(r"\S*[^\W_]\S*")


def count_words_joined(joined_tokens: str) -> int:
    """`count_words(joined_tokens.split())`, without building the list (the releases store tokens joined)."""
    return len(_WORD_IN_JOINED.findall(joined_tokens))
