"""How a run turns new text into tokens: the way its release's tokens were made.

`fit` reads the release's `build_report.json` and saves the answer as `tokenizer.json` in the run
folder; `predict` applies it. Three kinds:

    build    the build's cleaning + jieba (`imcm_build.text.text_to_tokens`), then zhconv to
             simplified Chinese when the release was built with `--to-simplified` (the build converts
             the cleaned text before tokenizing it)
    aapd     `imcm-build import aapd` keeps SGM's tokens: lower-cased, `,` `?` `!` split off as tokens,
             parentheses as the tokens `\\(` `\\)`, "'s" split off, other punctuation (`.` `-` `:` ...)
             dropped as a separator
    rcv1     `imcm-build import rcv1` keeps HiAGM's tokens: case kept, punctuation deleted inside a
             token ("state-owned" → "stateowned") except `/` `&` `=`; the source's stop-word list is
             not known, so stop words are kept (they encode as unknown tokens)

An imported release is recognised by its build report's `kind` ("import:aapd", "import:rcv1"); a
release without a build report, and a run folder without `tokenizer.json` (written before it
existed), use `build` without conversion.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from imcm_build.release import REPORT_FILE, ReleaseError
from imcm_build.text import text_to_tokens

TOKENIZER_FILE = "tokenizer.json"
KINDS = ("build", "aapd", "rcv1")

_AAPD_SPLIT_OFF = {",": " , ", "?": " ? ", "!": " ! ", "(": " \\( ", ")": " \\) "}
_AAPD_SEPARATORS = re.compile(r"[^\w\s,?!()'`]")
_AAPD_POSSESSIVE = re.compile(r"(?<=\w)'s\b")
_RCV1_DELETED = re.compile(r"[^\w/&=]")


@dataclass(frozen=True)
class TextTokenizer:
    kind: str = "build"
    to_simplified: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown tokenizer kind {self.kind!r}; known: {', '.join(KINDS)}")

    def __call__(self, text: str) -> list[str]:
        if self.kind == "aapd":
            return _aapd_tokens(text)
        if self.kind == "rcv1":
            return [token for token in (_RCV1_DELETED.sub("", raw) for raw in text.split()) if token]
        return text_to_tokens(text, self.to_simplified)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _aapd_tokens(text: str) -> list[str]:
    text = _AAPD_POSSESSIVE.sub(" 's", _AAPD_SEPARATORS.sub(" ", text.lower()))
    for mark, spaced in _AAPD_SPLIT_OFF.items():
        text = text.replace(mark, spaced)
    return text.split()


def release_tokenizer(release_dir: str | Path) -> TextTokenizer:
    """The tokenizer that made the tokens of the release at `release_dir` (see the module docstring)."""
    path = Path(release_dir) / REPORT_FILE
    if not path.is_file():
        return TextTokenizer()
    report = json.loads(path.read_text(encoding="utf-8"))
    kind = str(report.get("kind", ""))
    if kind.startswith("import:"):
        source = kind.removeprefix("import:")
        if source not in KINDS:
            raise ReleaseError(f"{path}: imported release of unknown kind {source!r}; cannot tell its tokenizer")
        return TextTokenizer(source)
    return TextTokenizer("build", to_simplified=bool((report.get("config") or {}).get("to_simplified", False)))


def save_tokenizer(tokenizer: TextTokenizer, run_dir: Path) -> None:
    temp = run_dir / (TOKENIZER_FILE + ".tmp")
    temp.write_text(json.dumps(tokenizer.to_dict(), indent=1) + "\n", encoding="utf-8")
    temp.replace(run_dir / TOKENIZER_FILE)


def load_tokenizer(run_dir: str | Path) -> TextTokenizer:
    """The run's tokenizer; run folders written before `tokenizer.json` existed get today's `build`."""
    path = Path(run_dir) / TOKENIZER_FILE
    if not path.is_file():
        return TextTokenizer()
    data = json.loads(path.read_text(encoding="utf-8"))
    return TextTokenizer(kind=data.get("kind", "build"), to_simplified=bool(data.get("to_simplified", False)))
