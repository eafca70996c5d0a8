"""AAPD (Yang et al., COLING 2018, SGM) → a release of the IMCM format.

Accepted inputs (files, or folders holding them):
- SGM parallel files `text_{train,val,test}` + `label_{train,val,test}`: one document per line,
  labels space-separated;
- a JSON list `[{"text": ..., "label": [...]}, ...]` (e.g. blalalt/bert `val.json`, `test.json`);
- a JSON object `{"content": [...], "labels": [[...], ...]}` (e.g. LR-GCN `test.json`).
In a folder, only these files are read (split tags as in `imcm_build.importers.SPLIT_OF_TAG`, or files
`split_map` names) and `labels.json` is taken as the label map unless `label_map` is given; any other
file (LR-GCN's `stats.json`) is skipped and listed in the build report's read step. The text is
already tokenized (lower-cased, punctuation split): tokens = text.split().
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from imcm_build.importers import (
    SPLIT_OF_TAG,
    ImportFormatError,
    SourceDocument,
    SourceFile,
    assemble_release,
    check_labels,
    check_text,
    load_json,
    source_tag,
)

LABEL_MAP_NAME = "labels.json"


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ImportFormatError(f"{path}: not UTF-8: {error}") from None


def read_sgm_pair(text_path: Path, label_path: Path, lowercase_labels: bool = False) -> SourceFile:
    texts, label_lines = _read_lines(text_path), _read_lines(label_path)
    if len(texts) != len(label_lines):
        raise ImportFormatError(
            f"{text_path} has {len(texts)} lines but {label_path} has {len(label_lines)}: they must be parallel"
        )
    documents = []
    for number, (text, labels) in enumerate(zip(texts, label_lines, strict=True), start=1):
        origin = f"{label_path}:{number}"
        names = labels.lower().split() if lowercase_labels else labels.split()
        documents.append(SourceDocument(text, check_labels(names, origin), f"{text_path}:{number}"))
    return SourceFile(source_tag(text_path), [text_path, label_path], "sgm", documents)


def _label_list(labels: object, origin: str, lowercase: bool) -> list[str]:
    if lowercase and isinstance(labels, list) and all(isinstance(label, str) for label in labels):
        labels = [label.lower() for label in labels]
    return check_labels(labels, origin)


def read_json_file(path: Path, lowercase_labels: bool = False) -> SourceFile:
    data = load_json(path)
    documents = []
    if isinstance(data, list):
        for item, entry in enumerate(data):
            origin = f"{path}[{item}]"
            if not isinstance(entry, dict) or "text" not in entry or "label" not in entry:
                raise ImportFormatError(f"{origin}: expected an object with 'text' and 'label'")
            labels = _label_list(entry["label"], origin, lowercase_labels)
            documents.append(SourceDocument(check_text(entry["text"], origin), labels, origin))
        return SourceFile(source_tag(path), [path], "json-list", documents)
    if isinstance(data, dict) and {"content", "labels"} <= set(data):
        contents, label_lists = data["content"], data["labels"]
        if (
            not isinstance(contents, list)
            or not isinstance(label_lists, list)
            or len(contents) != len(label_lists)
        ):
            raise ImportFormatError(f"{path}: 'content' and 'labels' must be lists of the same length")
        for item, (text, labels) in enumerate(zip(contents, label_lists, strict=True)):
            origin = f"{path}[{item}]"
            documents.append(
                SourceDocument(
                    check_text(text, origin), _label_list(labels, origin, lowercase_labels), origin
                )
            )
        return SourceFile(source_tag(path), [path], "json-content-labels", documents)
    raise ImportFormatError(f"{path}: neither a JSON list of {{text, label}} nor {{content, labels}}")


def _is_aapd_input(path: Path, split_map: Mapping[str, str] | None) -> bool:
    """Whether a file found in an input folder is one the AAPD formats define: an SGM `text_<split>` file
    (its `label_<split>` is read with it), a `<split>.json` (split tags: SPLIT_OF_TAG), or a file
    `split_map` names."""
    named = {str(key) for key in (split_map or {}).values()}
    if path.name in named or str(path) in named or source_tag(path) in {key.lower() for key in named}:
        return True
    if path.name.startswith("text_") or path.suffix == ".json":
        return source_tag(path) in SPLIT_OF_TAG
    return False


def _expand(
    inputs: Sequence[str | Path], split_map: Mapping[str, str] | None = None
) -> tuple[list[Path], Path | None, list[Path]]:
    """Files to read, a label map found in a folder, and the files of the folders that are skipped
    (not an AAPD input: e.g. LR-GCN's stats.json)."""
    files: list[Path] = []
    found_map = None
    skipped: list[Path] = []
    for path in map(Path, inputs):
        if not path.exists():
            raise ImportFormatError(f"{path}: no such file or folder")
        if not path.is_dir():
            files.append(path)
            continue
        for child in sorted(path.iterdir()):
            if child.name == LABEL_MAP_NAME:
                found_map = child
            elif _is_aapd_input(child, split_map):
                files.append(child)
            elif not _is_label_file_of(child, path):
                skipped.append(child)
    return files, found_map, skipped


def _is_label_file_of(path: Path, folder: Path) -> bool:
    """An SGM `label_<tag>` file whose `text_<tag>` is in the same folder (it is read with it)."""
    return path.name.startswith("label_") and (folder / ("text_" + path.name.removeprefix("label_"))).is_file()


def read_sources(files: list[Path], lowercase_labels: bool = False) -> list[SourceFile]:
    sources = []
    for path in files:
        if path.name.startswith("label_"):
            text_path = path.with_name("text_" + path.name.removeprefix("label_"))
            if text_path not in files:
                raise ImportFormatError(f"{path}: SGM label file without its text file {text_path.name}")
        elif path.name.startswith("text_"):
            label_path = path.with_name("label_" + path.name.removeprefix("text_"))
            if not label_path.is_file():
                raise ImportFormatError(f"{path}: SGM text file without its label file {label_path.name}")
            sources.append(read_sgm_pair(path, label_path, lowercase_labels))
        elif path.suffix == ".json":
            sources.append(read_json_file(path, lowercase_labels))
        else:
            raise ImportFormatError(f"{path}: not an AAPD input (text_*/label_* or *.json)")
    return sources


def import_aapd(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    split_map: Mapping[str, str] | None = None,
    label_map: str | Path | None = None,
    lowercase_labels: bool = False,
    seed: int = 42,
    validation_fraction: float = 0.1,
    name: str = "aapd",
    figures: bool = True,
) -> Path:
    """Import AAPD files/folders as a release at `out_dir` (splits and labels: see `imcm_build.importers`).

    `lowercase_labels` maps LR-GCN's `cs.IT` onto the lower-case names of blalalt's labels.json.
    """
    files, found_map, skipped = _expand(inputs, split_map)
    sources = read_sources(files, lowercase_labels)
    return assemble_release(
        sources,
        out_dir,
        kind="aapd",
        name=name,
        card_template="aapd_card.md",
        split_map=split_map,
        label_map=label_map or found_map,
        seed=seed,
        validation_fraction=validation_fraction,
        figures=figures,
        skipped_files=skipped,
        options={"lowercase_labels": lowercase_labels},
    )
