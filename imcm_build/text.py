"""Text → tokens, shared by the build and by `imcm_train` prediction so both tokenize alike."""

from __future__ import annotations

import logging
import re
from functools import cache

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
    return sum(1 for token in tokens if is_word(token))
