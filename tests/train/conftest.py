"""Small releases made from real Douban records, shared by the training tests (built once per session).

`small_release`: the first 600 records of douban-public/records.jsonl through
`imcm_build.build.build_release` with their 20 most frequent tags (no length filter): about 240
labelled documents, split 80/10/10 by the build.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import datasets
import pytest
import torch

from imcm_build.build import build_release
from imcm_build.config import BuildConfig
from imcm_build.records import Record, read_records
from imcm_build.release import LABELS_FILE, parquet_path, release_features
from tests.conftest import shared_path

SMALL_RELEASE_RECORDS = 600
SMALL_RELEASE_LABELS = 20


def read_real_records(count: int) -> list[Record]:
    source = shared_path("douban-public/records.jsonl")
    records = [item for item in islice(read_records([source]), count) if isinstance(item, Record)]
    assert len(records) == count, f"{source}: expected {count} valid records in the first {count} lines"
    return records


def write_release(folder: Path, label_names: list[str], splits: dict[str, dict[str, list]]) -> Path:
    """Write `splits` (split → column → values, labels as ClassLabel ids) in the release layout."""
    features = release_features(label_names)
    for split, columns in splits.items():
        target = folder / parquet_path(split)
        target.parent.mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_dict(columns, features=features).to_parquet(str(target))
    (folder / LABELS_FILE).write_text("\n".join(label_names) + "\n", encoding="utf-8")
    return folder


def build_small_release(folder: Path, records_file: Path, num_labels: int) -> Path:
    """The lead's release builder on a records subset; no length filter, so small records stay."""
    config = BuildConfig(
        records=[str(records_file)], out=str(folder), num_labels=num_labels, min_words=0, figures=False, workers=1
    )
    return Path(build_release(config))


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> None:
    """Two cores shared by many processes: one thread per test process avoids OpenMP oversubscription."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def small_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    records = read_real_records(SMALL_RELEASE_RECORDS)
    folder = tmp_path_factory.mktemp("small-release")
    subset = folder / "records.jsonl"
    subset.write_text("".join(record.to_json() + "\n" for record in records), encoding="utf-8")
    return build_small_release(folder / "release", subset, SMALL_RELEASE_LABELS)


# Small widths so a CPU epoch on `small_release` takes seconds; the defaults stay the paper's.
TINY_TRAIN_OPTIONS = {"max_length": 64, "max_vocab": 2000, "batch_size": 32, "progress": False}
TINY_HPARAMS = {
    "altxml": {"embed_dim": 16, "hidden_size": 16},
    "rnn_att": {"embed_dim": 16, "hidden_size": 16},
    "cnn": {"embed_dim": 16, "num_filters": 8},
    "cnn_rnn": {"embed_dim": 16, "num_filters": 8, "decoder_hidden": 16, "label_embed_dim": 16},
    "sgm": {"embed_dim": 16, "encoder_hidden": 16, "num_layers": 1, "beam_size": 1},
    "sgm_ge": {"embed_dim": 16, "encoder_hidden": 16, "num_layers": 1, "beam_size": 1},
}
