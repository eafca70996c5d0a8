"""Figures 1–2 of the paper, drawn from the statistics dict only (`stats.release_stats`).

Figure 1: label frequency in descending order (bars) with each label's IR on a second axis.
Figure 2: histogram of the number of labels per document.

Chinese label names need a CJK font. When matplotlib knows none, the x axis shows label ids, the
figure says so, and the id → name table is the label list of the dataset card (and labels.txt).
PNG output is byte-stable: no software/date metadata, fixed size and dpi. Each PNG's Description
text chunk says which of the two paths was taken.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib import font_manager
from matplotlib.figure import Figure

from imcm_build import release

CJK_FONT_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Noto Serif CJK SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Heiti SC",
    "AR PL UMing CN",
    "Droid Sans Fallback",
)
DPI = 150
NO_CJK_FONT_NOTE = (
    "No CJK font found: x axis shows label ids; names are in labels.txt and the card's label list"
)


def find_cjk_font() -> Path | None:
    """The file of the first installed font of CJK_FONT_FAMILIES, or None.

    matplotlib caches its font list; a font installed after that cache was written (e.g.
    `apt-get install fonts-wqy-microhei`) is looked up among the system font files too.
    """
    installed = {entry.name: entry.fname for entry in font_manager.fontManager.ttflist}
    if not any(family in installed for family in CJK_FONT_FAMILIES):
        known_files = set(installed.values())
        for path in font_manager.findSystemFonts():
            if path not in known_files:
                installed.setdefault(font_manager.FontProperties(fname=path).get_name(), path)
    for family in CJK_FONT_FAMILIES:
        if family in installed:
            return Path(installed[family])
    return None


def _png_metadata(description: str) -> dict[str, str | None]:
    return {"Software": None, "Description": description}


def _save(figure: Figure, path: Path, description: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI, metadata=_png_metadata(description))
    return path


def _label_frequency_figure(stats: dict[str, Any], label_names: list[str], font: Path | None) -> Figure:
    by_frequency = sorted(stats["labels"], key=lambda label: (-label["frequency"]["all"], label["id"]))
    frequencies = [label["frequency"]["all"] for label in by_frequency]
    ratios = [label["ir"] if label["ir"] is not None else math.nan for label in by_frequency]
    positions = list(range(len(by_frequency)))
    width = min(max(8.0, 0.12 * len(by_frequency)), 30.0)
    figure = Figure(figsize=(width, 5.0), layout="constrained")
    bars = figure.add_subplot()
    bars.bar(positions, frequencies, color="tab:blue", label="documents per label")
    bars.set_ylabel("documents")
    bars.set_xlim(-1, len(by_frequency))
    bars.set_xticks(positions)
    tick_size = 6 if len(by_frequency) <= 60 else 4
    if font is None:
        bars.set_xticklabels([str(label["id"]) for label in by_frequency], rotation=90, fontsize=tick_size)
        bars.set_xlabel("label id (descending frequency)")
        figure.suptitle(NO_CJK_FONT_NOTE, fontsize=8, color="tab:red")
    else:
        names = [label_names[label["id"]] for label in by_frequency]
        properties = font_manager.FontProperties(fname=str(font), size=tick_size)
        bars.set_xticklabels(names, rotation=90, fontproperties=properties)
        bars.set_xlabel("label (descending frequency)")
    ratio_axis = bars.twinx()
    ratio_axis.plot(positions, ratios, color="tab:red", marker=".", markersize=3, linewidth=1)
    ratio_axis.set_ylabel("imbalance ratio (max freq / freq)", color="tab:red")
    ratio_axis.set_ylim(bottom=0)
    bars.set_title(f"Label frequency and imbalance ratio ({stats['sets']['all']['instances']:,} documents)")
    return figure


def _labels_per_document_figure(stats: dict[str, Any]) -> Figure:
    histogram = stats["sets"]["all"]["labels_per_document"]
    figure = Figure(figsize=(7.0, 4.0), layout="constrained")
    axes = figure.add_subplot()
    axes.bar(range(len(histogram)), histogram, color="tab:blue")
    axes.set_xlabel("labels per document")
    axes.set_ylabel("documents")
    axes.set_xticks(range(len(histogram)))
    cardinality = stats["sets"]["all"]["cardinality"]
    mean = f"mean {cardinality:.2f}" if cardinality is not None else "no documents"
    axes.set_title(f"Labels per document ({mean})")
    return figure


def write_figures(stats: dict[str, Any], label_names: list[str], out_dir: Path) -> list[Path]:
    """Write release.LABEL_FREQUENCY_FIGURE and release.LABELS_PER_DOCUMENT_FIGURE under `out_dir`."""
    if len(label_names) != len(stats["labels"]):
        raise ValueError(
            f"{len(label_names)} label names but the statistics describe {len(stats['labels'])} labels"
        )
    font = find_cjk_font()
    description = f"label names drawn with {font.name}" if font else NO_CJK_FONT_NOTE
    out_dir = Path(out_dir)
    return [
        _save(
            _label_frequency_figure(stats, label_names, font),
            out_dir / release.LABEL_FREQUENCY_FIGURE,
            description,
        ),
        _save(
            _labels_per_document_figure(stats),
            out_dir / release.LABELS_PER_DOCUMENT_FIGURE,
            "labels per document",
        ),
    ]
