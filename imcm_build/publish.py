"""Publish documents as a release folder (layout: `imcm_build.release`), atomically.

Everything is written into a hidden sibling folder `.tmp-<name>-<random>` and renamed to `out_dir`
only when complete. An existing release at `out_dir` is renamed aside, the new one renamed in, and
the old one deleted; on any error (Ctrl-C included) the temporary folder is removed and `out_dir`
is left as it was. The Parquet files are written by `datasets` and are byte-identical for the same
documents and labels (checked by the tests), so their checksums are reproducible.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import re
import secrets
import shutil
import string
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from datasets.info import DatasetInfo, DatasetInfosDict
from datasets.splits import SplitDict, SplitInfo
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard

from imcm_build import release, stats
from imcm_build.document import Document
from imcm_build.text import count_words

_WHITESPACE = re.compile(r"\s")

CARD_TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "datacards"
RECORDED_VERSIONS = (
    "imcm-toolkit",
    "datasets",
    "pyarrow",
    "huggingface-hub",
    "jieba",
    "scikit-learn",
    "matplotlib",
)
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


class PublishError(ValueError):
    """Documents or a destination that cannot be published; the message names the document or path."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- checks -----------------------------------------------------------------------------------------


def _check_label_names(label_names: list[str]) -> None:
    if not label_names:
        raise PublishError("no label names: a release needs at least one label")
    for position, name in enumerate(label_names):
        if not name.strip() or "\n" in name or "\r" in name:
            raise PublishError(f"label {position} ({name!r}) is blank or contains a line break")
    duplicates = sorted(name for name, count in _counts(label_names).items() if count > 1)
    if duplicates:
        raise PublishError(f"label name(s) listed twice: {', '.join(duplicates)}")


def _counts(items: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def _where(doc: Document) -> str:
    return f"document {doc.id!r}" + (f" ({doc.origin})" if doc.origin else "")


def _check_document(doc: Document, label_ids: dict[str, int], seen: dict[str, Document]) -> None:
    if doc.id in seen:
        raise PublishError(f"{_where(doc)}: id already used by {_where(seen[doc.id])}")
    if doc.split not in release.SPLITS:
        raise PublishError(f"{_where(doc)}: split {doc.split!r} is not one of {', '.join(release.SPLITS)}")
    unknown = [label for label in doc.labels if label not in label_ids]
    if unknown:
        raise PublishError(f"{_where(doc)}: label(s) not in the label names: {', '.join(map(repr, unknown))}")
    if len(set(doc.labels)) != len(doc.labels):
        raise PublishError(f"{_where(doc)}: a label is listed twice: {doc.labels}")
    if "" in doc.tokens or _WHITESPACE.search("".join(doc.tokens)):
        spaced = [token for token in doc.tokens if not token or token != "".join(token.split())]
        raise PublishError(f"{_where(doc)}: token(s) empty or containing whitespace: {spaced[:3]!r}")


def _check_destination(out_dir: Path) -> None:
    """Only an empty folder or an earlier release may be replaced, never an arbitrary folder."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise PublishError(f"{out_dir}: exists and is not a folder; refusing to replace it")
    is_release = (out_dir / release.CHECKSUMS_FILE).exists() or (out_dir / release.LABELS_FILE).exists()
    if any(out_dir.iterdir()) and not is_release:
        raise PublishError(f"{out_dir}: a non-empty folder that is not a release; refusing to replace it")


# --- data -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def _split_columns(docs: list[Document], label_ids: dict[str, int]) -> dict[str, list[Any]]:
    return {
        "id": [doc.id for doc in docs],
        "title": [doc.title for doc in docs],
        "text": [doc.text for doc in docs],
        "tokens": [" ".join(doc.tokens) for doc in docs],
        "labels": [[label_ids[label] for label in doc.labels] for doc in docs],
    }


def _write_data(folder: Path, documents: list[Document], label_names: list[str]) -> list[SplitInfo]:
    features = release.release_features(label_names)
    label_ids = {name: index for index, name in enumerate(label_names)}
    splits = []
    (folder / release.DATA_DIR).mkdir()
    with _quiet_datasets():
        for split in release.SPLITS:
            docs = [doc for doc in documents if doc.split == split]
            # the schema carries the datasets features (ClassLabel names) as `Dataset.to_parquet` would
            table = pa.Table.from_pydict(_split_columns(docs, label_ids), schema=features.arrow_schema)
            pq.write_table(table, folder / release.parquet_path(split))
            splits.append(SplitInfo(name=split, num_bytes=table.nbytes, num_examples=len(docs)))
    return splits


def _release_stats(documents: list[Document], label_names: list[str]) -> dict[str, Any]:
    """`stats.release_stats` of the release being written, from the documents in memory rather than read
    back from its files (tests recompute the statistics from the Parquet files)."""
    label_ids = {name: index for index, name in enumerate(label_names)}
    label_lists = {split: [] for split in release.SPLITS}
    lengths = {split: [] for split in release.SPLITS}
    for doc in documents:
        label_lists[doc.split].append([label_ids[label] for label in doc.labels])
        lengths[doc.split].append(count_words(doc.tokens))
    return stats.split_stats(label_lists, lengths, label_names)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in RECORDED_VERSIONS:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _write_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


# --- card -------------------------------------------------------------------------------------------


def _size_category(instances: int) -> str:
    return next((name for limit, name in SIZE_CATEGORIES if instances < limit), "n>1M")


def _card_metadata(card: DatasetCard, label_names: list[str], splits: list[SplitInfo], folder: Path) -> None:
    """Fill the card's YAML as `Dataset.push_to_hub` does: dataset_info (features, splits) and configs."""
    info = DatasetInfo(features=release.release_features(label_names), splits=SplitDict())
    for split in splits:
        info.splits.add(split)
    info.download_size = sum(
        (folder / release.parquet_path(split)).stat().st_size for split in release.SPLITS
    )
    info.dataset_size = sum(split.num_bytes for split in splits)
    card.data.size_categories = [_size_category(sum(split.num_examples for split in splits))]
    DatasetInfosDict({"default": info}).to_dataset_card_data(card.data)
    data_files = [{"split": split, "path": release.parquet_path(split)} for split in release.SPLITS]
    MetadataConfigs({"default": {"data_files": data_files}}).to_dataset_card_data(card.data)


def _markdown_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _steps_table(build_report: dict[str, Any]) -> str:
    steps = build_report.get("steps") or []
    if not steps:
        return "The build report lists no processing steps.\n"
    lines = ["| Step | In | Out | Dropped (reason: count) |", "|---|---:|---:|---|"]
    for step in steps:
        dropped = (
            ", ".join(f"{reason}: {count:,}" for reason, count in sorted(step.get("dropped", {}).items()))
            or "–"
        )
        lines.append(f"| {_markdown_cell(step['step'])} | {step['in']:,} | {step['out']:,} | {dropped} |")
    return "\n".join(lines) + "\n"


def _splits_table(stats_data: dict[str, Any]) -> str:
    lines = ["| Split | Instances | Labels occurring | Cardinality |", "|---|---:|---:|---:|"]
    for split in release.SPLITS:
        row = stats_data["sets"][split]
        cardinality = f"{row['cardinality']:.3f}" if row["cardinality"] is not None else "–"
        lines.append(f"| {split} | {row['instances']:,} | {row['labels']:,} | {cardinality} |")
    return "\n".join(lines) + "\n"


def _label_table(stats_data: dict[str, Any], descriptions: dict[str, str]) -> str:
    """Id → name table with frequencies and IR; a Description column only when descriptions are given."""
    header = [
        "Id",
        "Label",
        *(["Description"] if descriptions else []),
        "All",
        "Train",
        "Validation",
        "Test",
        "IR",
    ]
    alignment = ["---:", "---", *(["---"] if descriptions else []), "---:", "---:", "---:", "---:", "---:"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(alignment) + "|"]
    for label in stats_data["labels"]:
        freq = label["frequency"]
        cells = [str(label["id"]), _markdown_cell(label["name"])]
        if descriptions:
            cells.append(_markdown_cell(descriptions.get(label["name"], "")))
        cells += [f"{freq[key]:,}" for key in ("all", "train", "validation", "test")]
        cells.append(f"{label['ir']:.2f}" if label["ir"] is not None else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _figures_markdown(figures: bool) -> str:
    if not figures:
        return "Figures were not generated for this release (built with figures turned off).\n"
    return (
        f"![Label frequency (bars) and imbalance ratio (line)]({release.LABEL_FREQUENCY_FIGURE})\n\n"
        f"![Number of labels per document]({release.LABELS_PER_DOCUMENT_FIGURE})\n"
    )


def _fenced_json(data: Any) -> str:
    return "```json\n" + json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n```\n"


def card_fields(
    name: str, stats_data: dict[str, Any], build_report: dict[str, Any], config: dict[str, Any], figures: bool
) -> dict[str, str]:
    """The `$fields` a card template may use (string.Template)."""
    whole = stats_data["sets"]["all"]
    return {
        "name": name,
        "instances": f"{whole['instances']:,}",
        "num_labels": f"{stats_data['num_labels']:,}",
        "labels_occurring": f"{whole['labels']:,}",
        "cardinality": f"{whole['cardinality']:.2f}" if whole["cardinality"] is not None else "–",
        "ir": f"{whole['ir']:.2f}" if whole["ir"] is not None else "–",
        "table1": stats.format_table1(stats_data),
        "splits_table": _splits_table(stats_data),
        "processing_steps": _steps_table(build_report),
        "figures": _figures_markdown(figures),
        "label_table": _label_table(stats_data, build_report.get("label_descriptions", {})),
        "config_json": _fenced_json(config),
        "versions_json": _fenced_json(build_report.get("versions", {})),
    }


def _template_path(card_template: str) -> Path:
    path = Path(card_template)
    path = path if path.is_absolute() else CARD_TEMPLATES_DIR / path
    if not path.is_file():
        raise PublishError(f"{path}: card template not found")
    return path


def render_card(
    template_path: Path, fields: dict[str, str], label_names: list[str], splits: list[SplitInfo], folder: Path
) -> str:
    """The template's own YAML (language, license, ...) + the `datasets` metadata, and its filled body."""
    card = DatasetCard(template_path.read_text(encoding="utf-8"))
    try:
        body = string.Template(card.text).substitute(fields)
    except (KeyError, ValueError) as error:
        raise PublishError(f"{template_path}: unknown or malformed template field: {error}") from None
    _card_metadata(card, label_names, splits, folder)
    return f"---\n{card.data.to_yaml()}\n---\n{body}"


# --- checksums --------------------------------------------------------------------------------------


def _release_files(folder: Path) -> list[str]:
    files = (path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
    return sorted(file for file in files if file != release.CHECKSUMS_FILE)


def write_checksums(folder: Path) -> None:
    """SHA256SUMS in `sha256sum -c` format (hash, two spaces, path), sorted by path."""
    lines = [f"{sha256_file(folder / file)}  {file}\n" for file in _release_files(folder)]
    (folder / release.CHECKSUMS_FILE).write_text("".join(lines), encoding="utf-8")


def verify_checksums(release_dir: str | Path) -> list[str]:
    """Every problem found (missing/changed/unlisted file, malformed line); empty means the release is intact."""
    folder = Path(release_dir)
    sums_path = folder / release.CHECKSUMS_FILE
    if not sums_path.is_file():
        return [f"{sums_path}: missing"]
    problems = []
    listed = set()
    for number, line in enumerate(sums_path.read_text(encoding="utf-8").splitlines(), start=1):
        digest, separator, file = line.partition("  ")
        if not separator or len(digest) != 64 or not file:
            problems.append(f"{sums_path}:{number}: malformed line {line!r}")
            continue
        listed.add(file)
        path = folder / file
        if not path.is_file():
            problems.append(f"{path}: listed in {release.CHECKSUMS_FILE} but missing")
        elif sha256_file(path) != digest:
            problems.append(f"{path}: checksum mismatch (changed since publishing)")
    problems += [
        f"{folder / file}: not listed in {release.CHECKSUMS_FILE}"
        for file in _release_files(folder)
        if file not in listed
    ]
    return problems


# --- publish ----------------------------------------------------------------------------------------


def _write_release(
    folder: Path,
    documents: list[Document],
    label_names: list[str],
    build_report: dict[str, Any],
    config: dict[str, Any],
    template: Path,
    figures: bool,
    name: str,
) -> None:
    splits = _write_data(folder, documents, label_names)
    (folder / release.LABELS_FILE).write_text("".join(f"{name}\n" for name in label_names), encoding="utf-8")
    stats_data = _release_stats(documents, label_names)
    stats.write_stats(stats_data, folder / release.STATS_FILE)
    if figures:
        from imcm_build.figures import write_figures  # matplotlib only when figures are wanted

        write_figures(stats_data, label_names, folder)
    report = {**build_report, "config": build_report.get("config", config), "versions": library_versions()}
    _write_json(folder / release.REPORT_FILE, report)
    fields = card_fields(name, stats_data, report, config, figures)
    card = render_card(template, fields, label_names, splits, folder)
    (folder / release.CARD_FILE).write_text(card, encoding="utf-8")
    write_checksums(folder)


def _swap_into_place(staging: Path, out_dir: Path, name: str) -> None:
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    old = out_dir.parent / f".old-{name}-{secrets.token_hex(6)}"
    out_dir.rename(old)
    try:
        staging.rename(out_dir)
    except BaseException:
        old.rename(out_dir)
        raise
    shutil.rmtree(old)


def publish_release(
    documents: list[Document],
    label_names: list[str],
    out_dir: Path,
    build_report: dict,
    config: dict,
    name: str = "imcm",
    card_template: str = "imcm_card.md",
    figures: bool = True,
) -> Path:
    """Write `documents` (tokens, labels and split filled) as a complete release at `out_dir`.

    `label_names` fixes the ClassLabel ids (line i of labels.txt = id i). `card_template` is a file
    name in `datacards/` or an absolute path. Raises PublishError for bad documents or destination.
    """
    _check_label_names(label_names)
    label_ids = {label: index for index, label in enumerate(label_names)}
    seen: dict[str, Document] = {}
    for doc in documents:
        _check_document(doc, label_ids, seen)
        seen[doc.id] = doc
    empty = [split for split in release.SPLITS if not any(doc.split == split for doc in documents)]
    if empty:
        raise PublishError(f"split(s) {', '.join(empty)} have no documents: every split needs at least one")
    out_dir = Path(out_dir)
    _check_destination(out_dir)
    template = _template_path(card_template)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".tmp-{name}-{secrets.token_hex(6)}"
    staging.mkdir()
    try:
        _write_release(staging, documents, label_names, build_report, config, template, figures, name)
        _swap_into_place(staging, out_dir, name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir
