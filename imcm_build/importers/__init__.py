"""Turn other multi-label benchmarks (AAPD, RCV1-v2) into releases of the IMCM format.

Every importer reads its files into `SourceDocument`s grouped by input file, then
`assemble_release` assigns splits, orders labels, carves a validation split when none is given and
publishes with `imcm_build.publish.publish_release`, so the output has exactly the IMCM layout.

Splits. An input's split comes from its name: `train`; `val`, `valid`, `validation` or `dev`
(→ validation); `test` — the last `_`-separated part of the file stem (`text_val`, `rcv1_dev.json`,
`test.json`). `split_map` overrides this for users holding only some splits, e.g.
`{"train": "val.json", "test": "test.json"}` (values: a file name, its stem/tag, or its path); then
every input must be mapped. `train` and `test` are required. Without a validation input, a seeded
`MultilabelStratifiedShuffleSplit` moves `validation_fraction` of train to validation, and its size
is then corrected to exactly round(n × validation_fraction) as in the build's split step
(`imcm_build.steps.split.correct_sizes`); the build report records it.

Labels. Ids follow descending train frequency (ties by name) over all labels that occur anywhere;
with a label map, labels of the map that never occur follow, by name, and a label outside the map
is an error naming file:line.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

from imcm_build.document import Document
from imcm_build.publish import publish_release, sha256_file
from imcm_build.report import StepReport
from imcm_build.steps.split import correct_sizes
from imcm_build.text import count_words

SPLIT_OF_TAG = {
    "train": "train",
    "val": "validation",
    "valid": "validation",
    "validation": "validation",
    "dev": "validation",
    "test": "test",
}
LABEL_WITH_DESCRIPTION = re.compile(r"\b([A-Z][A-Z0-9]*):\s+")


class ImportFormatError(ValueError):
    """Input that cannot be imported; the message names the file (and line or item) and the reason."""


@dataclass
class SourceDocument:
    text: str
    labels: list[str]
    origin: str  # file:line, or file[item] for documents inside one JSON value


@dataclass
class SourceFile:
    """One input split: a file (or an SGM text/label pair) and the documents read from it."""

    tag: str  # "val" for text_val or val.json; used in ids and default split assignment
    paths: list[Path]
    format: str
    documents: list[SourceDocument]

    def describe(self) -> dict[str, Any]:
        return {
            "paths": [str(path) for path in self.paths],
            "sha256": [sha256_file(path) for path in self.paths],
            "format": self.format,
            "tag": self.tag,
            "documents": len(self.documents),
        }


def source_tag(path: Path) -> str:
    return path.stem.split("_")[-1].lower()


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ImportFormatError(
            f"{path}:{error.lineno}: malformed JSON: {error.msg} (column {error.colno})"
        ) from None
    except UnicodeDecodeError as error:
        raise ImportFormatError(f"{path}: not UTF-8: {error}") from None


def check_labels(labels: Any, origin: str) -> list[str]:
    if not isinstance(labels, list) or not all(isinstance(label, str) and label.strip() for label in labels):
        raise ImportFormatError(f"{origin}: labels must be a list of non-empty strings, got {labels!r}")
    if len(set(labels)) != len(labels):
        raise ImportFormatError(f"{origin}: a label is listed twice: {labels}")
    return labels


def check_text(text: Any, origin: str) -> str:
    if not isinstance(text, str):
        raise ImportFormatError(f"{origin}: text must be a string, got {type(text).__name__}")
    return text


# --- label maps -------------------------------------------------------------------------------------


def read_label_map(path: str | Path) -> dict[str, str]:
    """Label universe as {name: description}. Formats:

    - JSON object (keys are the names, e.g. AAPD labels.json {"cs.it": 0}) or JSON list of names;
    - `CODE: description` lines, indented or not (RCV1 rcv1.label_meaning);
    - tab-separated `parent<TAB>child...` lines (RCV1 rcv1.taxonomy; "Root" is not a label);
    - otherwise one name per line.
    """
    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(f"{path}: label map not found")
    if path.suffix == ".json":
        data = load_json(path)
        if isinstance(data, dict | list) and all(isinstance(name, str) for name in data):
            return {name: "" for name in data}
        raise ImportFormatError(f"{path}: a JSON label map must be an object or a list of label names")
    labels: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        for name, description in _label_map_line(line):
            if labels.get(name, description) != description:
                raise ImportFormatError(f"{path}:{number}: {name!r} described twice differently")
            labels[name] = description
    if not labels:
        raise ImportFormatError(f"{path}: the label map is empty")
    return labels


def _label_map_line(line: str) -> list[tuple[str, str]]:
    if "\t" in line.strip():
        return [(name, "") for name in line.split() if name != "Root"]
    matches = list(LABEL_WITH_DESCRIPTION.finditer(line))
    if not matches:
        return [(line.strip(), "")] if line.strip() else []
    # one line may hold several "CODE: description" pairs (a line break lost upstream)
    ends = [match.start() for match in matches[1:]] + [len(line)]
    return [
        (match.group(1), line[match.end() : end].strip()) for match, end in zip(matches, ends, strict=True)
    ]


# --- splits -----------------------------------------------------------------------------------------


def _matches(source: SourceFile, key: str) -> bool:
    return any(key in (path.name, str(path)) for path in source.paths) or key.lower() == source.tag


def assign_splits(sources: list[SourceFile], split_map: Mapping[str, str] | None) -> dict[str, SourceFile]:
    """Release split → input, from the input names or `split_map` (see the module docstring)."""
    tags = Counter(source.tag for source in sources)
    repeated = [tag for tag, count in tags.items() if count > 1]
    if repeated:
        raise ImportFormatError(f"several inputs are named {repeated[0]!r}: give one input per split")
    assigned: dict[str, SourceFile] = {}
    if split_map:
        unknown = sorted(set(split_map) - set(SPLIT_OF_TAG.values()))
        if unknown:
            raise ImportFormatError(f"split_map: unknown split(s) {', '.join(unknown)}")
        for split, key in split_map.items():
            found = [source for source in sources if _matches(source, str(key))]
            if len(found) != 1:
                raise ImportFormatError(
                    f"split_map: {split}={key!r} matches {len(found)} inputs, need exactly one"
                )
            assigned[split] = found[0]
        unmapped = [source for source in sources if source not in assigned.values()]
        if unmapped:
            raise ImportFormatError(f"{unmapped[0].paths[0]}: input not assigned to any split by split_map")
    else:
        for source in sources:
            if source.tag not in SPLIT_OF_TAG:
                raise ImportFormatError(
                    f"{source.paths[0]}: cannot tell the split from the name ({source.tag!r}); give split_map"
                )
            assigned[SPLIT_OF_TAG[source.tag]] = source
    missing = [split for split in ("train", "test") if split not in assigned]
    if missing:
        raise ImportFormatError(
            f"no {' or '.join(missing)} input: train and test are required (see split_map)"
        )
    return assigned


def carve_validation(
    train: list[Document], fraction: float, seed: int, report: StepReport
) -> tuple[list[Document], list[Document]]:
    """Seeded iterative stratification of `train` into (train, validation)."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {fraction}")
    if len(train) < 2:
        raise ImportFormatError(f"cannot carve a validation split out of {len(train)} train document(s)")
    names = sorted({label for doc in train for label in doc.labels})
    column = {name: index for index, name in enumerate(names)}
    indicator = np.zeros((len(train), max(len(names), 1)), dtype=np.int8)
    for row, doc in enumerate(train):
        indicator[row, [column[label] for label in doc.labels]] = 1
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    _, moved = next(splitter.split(np.zeros(len(train)), indicator))
    in_validation = np.zeros(len(train), dtype=int)
    in_validation[moved] = 1
    # iterstrat balances labels before sizes (1,000 documents at 0.1 gave 102): correct the sizes as the
    # build's split step does
    n_validation = min(max(math.floor(len(train) * fraction + 0.5), 1), len(train) - 1)
    in_validation = correct_sizes(indicator, in_validation, np.array([len(train) - n_validation, n_validation]))
    report.notes.update(
        validation="carved from train",
        method="iterstrat MultilabelStratifiedShuffleSplit, sizes corrected to round(n × fraction)",
        validation_fraction=fraction,
        seed=seed,
        moved_to_validation=int(in_validation.sum()),
    )
    return (
        [doc for doc, flag in zip(train, in_validation, strict=True) if not flag],
        [doc for doc, flag in zip(train, in_validation, strict=True) if flag],
    )


# --- assembling -------------------------------------------------------------------------------------


def order_labels(split_docs: Mapping[str, list[Document]], universe: Mapping[str, str] | None) -> list[str]:
    train_counts = Counter(label for doc in split_docs["train"] for label in doc.labels)
    occurring = {label for docs in split_docs.values() for doc in docs for label in doc.labels}
    ordered = sorted(occurring, key=lambda label: (-train_counts[label], label))
    return ordered + sorted(set(universe or {}) - occurring)


def _to_document(source_doc: SourceDocument, doc_id: str, split: str) -> Document:
    tokens = source_doc.text.split()
    return Document(
        id=doc_id,
        title="",
        summary=source_doc.text,
        author_intro="",
        tags=list(source_doc.labels),
        origin=source_doc.origin,
        text=source_doc.text,
        tokens=tokens,
        n_words=count_words(tokens),
        labels=list(source_doc.labels),
        split=split,
    )


def _check_universe(sources: Sequence[SourceFile], universe: Mapping[str, str], map_path: Path) -> None:
    for source in sources:
        for doc in source.documents:
            unknown = [label for label in doc.labels if label not in universe]
            if unknown:
                hint = " (its names are lower-case: --lowercase-labels)" if unknown[0].lower() in universe else ""
                raise ImportFormatError(
                    f"{doc.origin}: label {unknown[0]!r} is not in the label map {map_path}{hint}"
                )


def assemble_release(
    sources: list[SourceFile],
    out_dir: str | Path,
    *,
    kind: str,
    name: str,
    card_template: str,
    split_map: Mapping[str, str] | None = None,
    label_map: str | Path | None = None,
    seed: int = 42,
    validation_fraction: float = 0.1,
    figures: bool = True,
    skipped_files: Sequence[Path] = (),
    options: Mapping[str, Any] | None = None,
) -> Path:
    """Splits, label order and validation carving as the module docstring says, then publish.

    `skipped_files` (files of input folders that are not inputs) are listed in the read step's notes;
    `options` (importer-specific, e.g. lowercase_labels) are recorded in the configuration."""
    assigned = assign_splits(sources, split_map)
    universe = read_label_map(label_map) if label_map else None
    if universe is not None:
        _check_universe(sources, universe, Path(label_map))
    read_report = StepReport("read", notes={"inputs": len(sources)})
    if skipped_files:
        read_report.notes["skipped_files"] = [f"{path} (not an input of this format)" for path in skipped_files]
    split_docs: dict[str, list[Document]] = {}
    for split, source in assigned.items():
        split_docs[split] = [
            _to_document(doc, f"{kind}-{source.tag}-{position:06d}", split)
            for position, doc in enumerate(source.documents, start=1)
        ]
        read_report.n_in += len(source.documents)
    read_report.n_out = read_report.n_in
    split_report = StepReport("split", n_in=read_report.n_out, n_out=read_report.n_out)
    if "validation" in split_docs:
        split_report.notes["validation"] = f"given: {assigned['validation'].paths[0]}"
    else:
        split_docs["train"], split_docs["validation"] = carve_validation(
            split_docs["train"], validation_fraction, seed, split_report
        )
        for doc in split_docs["validation"]:
            doc.split = "validation"
    label_names = order_labels(split_docs, universe)
    config = {
        "kind": kind,
        "name": name,
        "inputs": [str(path) for source in sources for path in source.paths],
        "split_map": dict(split_map) if split_map else None,
        "label_map": str(label_map) if label_map else None,
        "seed": seed,
        "validation_fraction": validation_fraction,
        **(options or {}),
    }
    descriptions = {label: text for label, text in (universe or {}).items() if text}
    report = {
        "name": name,
        "kind": f"import:{kind}",
        "config": config,
        "inputs": {split: source.describe() for split, source in assigned.items()},
        "label_map": {"path": str(label_map), "sha256": sha256_file(Path(label_map))} if label_map else None,
        "steps": [read_report.to_dict(), split_report.to_dict()],
        "label_descriptions": descriptions,
        "documents_published": sum(len(docs) for docs in split_docs.values()),
    }
    documents = [doc for split in ("train", "validation", "test") for doc in split_docs[split]]
    return publish_release(
        documents,
        label_names,
        Path(out_dir),
        report,
        config,
        name=name,
        card_template=card_template,
        figures=figures,
    )


def import_release(kind: str, inputs: list[Path], out_dir: Path, **opts: Any) -> Path:
    """Dispatch to `import_aapd` or `import_rcv1` (options: split_map, label_map, seed, ...)."""
    from imcm_build.importers.aapd import import_aapd
    from imcm_build.importers.rcv1 import import_rcv1

    importers: dict[str, Callable[..., Path]] = {"aapd": import_aapd, "rcv1": import_rcv1}
    if kind not in importers:
        raise ValueError(f"unknown import kind {kind!r}; known: {', '.join(sorted(importers))}")
    return importers[kind](inputs, out_dir, **opts)
