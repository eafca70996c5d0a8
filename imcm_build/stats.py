"""Table-1 statistics of a multi-label dataset, as pure functions over label-id lists and lengths.

Definitions (L = number of labels that occur at least once, freq(l) = number of documents carrying l):

    cardinality  = total label assignments / instances            (mean labels per document)
    density      = cardinality / num_labels                       (num_labels = the declared label set)
    IR(l)        = max_l' freq(l') / freq(l)                      (per-label imbalance ratio, >= 1)
    ir           = mean of IR(l) over the ceil(L / 2) most frequent occurring labels
    mean_ir      = mean of IR(l) over all L occurring labels      (MeanIR, Charte et al. 2015)
    max_ir       = max IR(l) over occurring labels = max freq / min non-zero freq

`ir` is the paper's headline IR: it "indicates how imbalanced the top 50 percentage of labels are".
Labels that never occur have IR = inf (`imbalance_ratios`) and are left out of every mean; in the
JSON statistics their IR is written as null. Ties in frequency do not change `ir` (equal IRs).

Lengths are word counts (tokens with a letter or digit, see `imcm_build.text.count_words`).
Statistics of an empty set are None where they are undefined (cardinality, IRs, lengths).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imcm_build import release
from imcm_build.text import count_words_joined

WHOLE_SET = "all"
TABLE1_ROWS = ((WHOLE_SET, "All"), ("train", "Train"), ("validation", "Validation"), ("test", "Test"))


def label_frequencies(label_lists: Sequence[Sequence[int]], num_labels: int) -> list[int]:
    """Number of documents carrying each label id 0..num_labels-1.

    Raises ValueError naming the document (by position) for an id out of range or listed twice.
    """
    freqs = [0] * num_labels
    for position, labels in enumerate(label_lists):
        if len(set(labels)) != len(labels):
            raise ValueError(f"document {position}: a label id is listed twice: {list(labels)}")
        for label in labels:
            if not 0 <= label < num_labels:
                raise ValueError(f"document {position}: label id {label} is outside 0..{num_labels - 1}")
            freqs[label] += 1
    return freqs


def imbalance_ratios(freqs: Sequence[int]) -> list[float]:
    """Per-label IR = max freq / freq; inf for labels that never occur (left out of every mean)."""
    top = max(freqs, default=0)
    return [top / freq if freq > 0 else math.inf for freq in freqs]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _imbalance_summary(freqs: Sequence[int]) -> dict[str, float | None]:
    occurring = sorted((freq for freq in freqs if freq > 0), reverse=True)
    ratios = imbalance_ratios(occurring)
    top_half = ratios[: math.ceil(len(ratios) / 2)]
    return {"ir": _mean(top_half), "mean_ir": _mean(ratios), "max_ir": max(ratios, default=None)}


def labels_per_document(label_lists: Sequence[Sequence[int]]) -> list[int]:
    """Histogram: element k = number of documents with exactly k labels (k = 0..max)."""
    counts = Counter(len(labels) for labels in label_lists)
    return [counts.get(k, 0) for k in range(max(counts, default=-1) + 1)]


def compute_stats(
    label_lists: Sequence[Sequence[int]], lengths: Sequence[int], num_labels: int
) -> dict[str, Any]:
    """Table-1 statistics of one set of documents (see the module docstring for the formulas)."""
    if len(label_lists) != len(lengths):
        raise ValueError(
            f"{len(label_lists)} label lists but {len(lengths)} lengths: one of each per document"
        )
    if num_labels < 1:
        raise ValueError(f"num_labels must be at least 1, got {num_labels}")
    freqs = label_frequencies(label_lists, num_labels)
    instances = len(label_lists)
    cardinality = sum(freqs) / instances if instances else None
    return {
        "instances": instances,
        "labels": sum(1 for freq in freqs if freq > 0),
        "num_labels": num_labels,
        "label_assignments": sum(freqs),
        "cardinality": cardinality,
        "density": cardinality / num_labels if cardinality is not None else None,
        "mean_length_words": statistics.fmean(lengths) if lengths else None,
        "median_length_words": statistics.median(lengths) if lengths else None,
        **_imbalance_summary(freqs),
        "labels_per_document": labels_per_document(label_lists),
        "distinct_label_sets": len({frozenset(labels) for labels in label_lists}),
    }


def _json_ratio(value: float) -> float | None:
    return None if math.isinf(value) else value


def release_stats(release_dir: str | Path) -> dict[str, Any]:
    """Statistics of a published release: the whole set, each split, and every label's frequencies.

    A document's length is the number of words among its space-joined `tokens`.
    """
    names = release.read_label_names(release_dir)
    label_lists: dict[str, list[list[int]]] = {}
    lengths: dict[str, list[int]] = {}
    for split in release.SPLITS:
        data = release.read_split(release_dir, split)
        label_lists[split] = data.labels
        lengths[split] = [count_words_joined(tokens) for tokens in data.tokens]
    return split_stats(label_lists, lengths, names)


def split_stats(
    label_lists: dict[str, list[list[int]]], lengths: dict[str, list[int]], label_names: list[str]
) -> dict[str, Any]:
    """`compute_stats` of the whole set and of each split in release.SPLITS, plus per-label frequencies."""
    missing = [split for split in release.SPLITS if split not in label_lists or split not in lengths]
    if missing:
        raise ValueError(f"no label lists or lengths for split(s) {', '.join(missing)}")
    label_lists = {**label_lists, WHOLE_SET: [ids for split in release.SPLITS for ids in label_lists[split]]}
    lengths = {**lengths, WHOLE_SET: [length for split in release.SPLITS for length in lengths[split]]}
    num_labels = len(label_names)
    sets = {key: compute_stats(label_lists[key], lengths[key], num_labels) for key, _ in TABLE1_ROWS}
    freqs = {key: label_frequencies(label_lists[key], num_labels) for key, _ in TABLE1_ROWS}
    ratios = imbalance_ratios(freqs[WHOLE_SET])
    labels = [
        {
            "id": label_id,
            "name": name,
            "frequency": {key: freqs[key][label_id] for key, _ in TABLE1_ROWS},
            "ir": _json_ratio(ratios[label_id]),
        }
        for label_id, name in enumerate(label_names)
    ]
    return {"num_labels": num_labels, "sets": sets, "labels": labels}


def _cell(value: float | int | None, digits: int) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def format_table1(stats: dict[str, Any]) -> str:
    """The paper's Table 1 as a markdown table (rows All/Train/Validation/Test) from `release_stats`."""
    header = "| | Instances | Labels | Cardinality | Density | Mean words | IR | MeanIR | MaxIR |"
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, title in TABLE1_ROWS:
        row = stats["sets"][key]
        cells = [
            _cell(row["instances"], 0),
            _cell(row["labels"], 0),
            _cell(row["cardinality"], 3),
            _cell(row["density"], 4),
            _cell(row["mean_length_words"], 2),
            _cell(row["ir"], 2),
            _cell(row["mean_ir"], 2),
            _cell(row["max_ir"], 2),
        ]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_stats(stats: dict[str, Any], path: str | Path) -> None:
    """Write standard JSON (no NaN/Infinity: an infinite IR must already be None)."""
    text = json.dumps(stats, ensure_ascii=False, indent=2, sort_keys=True, allow_nan=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


def read_stats(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise release.ReleaseError(f"{path}: missing: no statistics file") from None
    except json.JSONDecodeError as error:
        raise release.ReleaseError(f"{path}:{error.lineno}: malformed JSON: {error.msg}") from None
    if not isinstance(stats, dict) or "sets" not in stats or "labels" not in stats:
        raise release.ReleaseError(f"{path}: not a statistics file (expected keys 'sets' and 'labels')")
    return stats
