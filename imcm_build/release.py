"""The release layout: the one place that names the files of a published dataset folder.

    <release>/
      README.md                      dataset card (YAML header written by `datasets`)
      data/{split}-00000-of-00001.parquet   columns: id, title, text, tokens, labels
      labels.txt                     one label per line; line i = ClassLabel id i (descending frequency)
      stats.json                     Table-1 statistics (whole set and each split)
      build_report.json              every step's in/out counts and drop reasons, config, versions, inputs
      figures/label_frequency.png, figures/labels_per_document.png
      SHA256SUMS                     sha256 of every other file, `sha256sum -c` compatible
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

if TYPE_CHECKING:
    import datasets

SPLITS = ("train", "validation", "test")
DATA_DIR = "data"
CARD_FILE = "README.md"
LABELS_FILE = "labels.txt"
STATS_FILE = "stats.json"
REPORT_FILE = "build_report.json"
CHECKSUMS_FILE = "SHA256SUMS"
FIGURES_DIR = "figures"
LABEL_FREQUENCY_FIGURE = "figures/label_frequency.png"
LABELS_PER_DOCUMENT_FIGURE = "figures/labels_per_document.png"
COLUMNS = ("id", "title", "text", "tokens", "labels")


class ReleaseError(ValueError):
    """A folder that is not a complete release; the message names the file and what is wrong."""


def parquet_path(split: str) -> str:
    return f"{DATA_DIR}/{split}-00000-of-00001.parquet"


def release_features(label_names: list[str]) -> datasets.Features:
    """id/title/text: strings; tokens: the jieba tokens joined by single spaces; labels: ClassLabel ids."""
    import datasets  # ~0.6 s: only where a release is written or checked, not for every import of this module

    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "title": datasets.Value("string"),
            "text": datasets.Value("string"),
            "tokens": datasets.Value("string"),
            "labels": datasets.Sequence(datasets.ClassLabel(names=list(label_names))),
        }
    )


@dataclass
class ReleaseSplit:
    ids: list[str]
    titles: list[str]
    texts: list[str]
    tokens: list[str]  # space-joined
    labels: list[list[int]]  # ClassLabel ids


def read_label_names(release: str | Path) -> list[str]:
    path = Path(release) / LABELS_FILE
    if not path.exists():
        raise ReleaseError(f"{path}: missing: not a release folder (no {LABELS_FILE})")
    names = path.read_text(encoding="utf-8").splitlines()
    if not names or any(not name for name in names):
        raise ReleaseError(f"{path}: empty label list or blank line")
    return names


def read_split(release: str | Path, split: str) -> ReleaseSplit:
    """Read one split straight from Parquet (fast path used by stats and training)."""
    path = Path(release) / parquet_path(split)
    if not path.exists():
        raise ReleaseError(f"{path}: missing: the release has no {split!r} split")
    table = pq.read_table(path)
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise ReleaseError(f"{path}: missing column(s) {', '.join(missing)}")
    data = table.to_pydict()
    return ReleaseSplit(data["id"], data["title"], data["text"], data["tokens"], data["labels"])
