"""RCV1-v2 (Lewis et al., JMLR 2004) → a release of the IMCM format.

Input: JSON lines `{"doc_label": [...], "doc_token": [...], ...}` as distributed with
HiAGM/NeuralClassifier (`rcv1_train.json`, `rcv1_dev.json`, `rcv1_test.json`); the tokens are kept
as given (text = tokens joined by spaces). The label map may be `rcv1.label_meaning`
(`C11: STRATEGY/PLANS`, whose descriptions go to the card) or `rcv1.taxonomy`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from imcm_build.importers import (
    ImportFormatError,
    SourceDocument,
    SourceFile,
    assemble_release,
    check_labels,
    source_tag,
)


def _parse_line(raw: bytes, origin: str) -> SourceDocument:
    try:
        entry = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ImportFormatError(f"{origin}: not UTF-8: {error}") from None
    except json.JSONDecodeError as error:
        raise ImportFormatError(f"{origin}: malformed JSON: {error.msg} (column {error.colno})") from None
    if not isinstance(entry, dict) or "doc_label" not in entry or "doc_token" not in entry:
        raise ImportFormatError(f"{origin}: expected an object with 'doc_label' and 'doc_token'")
    tokens = entry["doc_token"]
    if not isinstance(tokens, list) or not all(
        isinstance(token, str) and token.split() == [token] for token in tokens
    ):
        raise ImportFormatError(f"{origin}: doc_token must be a list of strings without whitespace")
    return SourceDocument(" ".join(tokens), check_labels(entry["doc_label"], origin), origin)


def read_json_lines(path: str | Path) -> SourceFile:
    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(f"{path}: no such file")
    documents = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                raise ImportFormatError(f"{path}:{number}: blank line (expected one JSON object per line)")
            documents.append(_parse_line(raw, f"{path}:{number}"))
    return SourceFile(source_tag(path), [path], "json-lines", documents)


def import_rcv1(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    split_map: Mapping[str, str] | None = None,
    label_map: str | Path | None = None,
    seed: int = 42,
    validation_fraction: float = 0.1,
    name: str = "rcv1",
    figures: bool = True,
) -> Path:
    """Import RCV1-v2 JSON-lines files as a release at `out_dir` (see `imcm_build.importers`)."""
    sources = [read_json_lines(path) for path in inputs]
    return assemble_release(
        sources,
        out_dir,
        kind="rcv1",
        name=name,
        card_template="rcv1_card.md",
        split_map=split_map,
        label_map=label_map,
        seed=seed,
        validation_fraction=validation_fraction,
        figures=figures,
    )
