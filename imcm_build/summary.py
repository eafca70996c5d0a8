"""The one-screen summary printed after a build, an import or the demo; it reads only release files."""

from __future__ import annotations

import json
from pathlib import Path

from imcm_build.release import (
    CARD_FILE,
    LABEL_FREQUENCY_FIGURE,
    LABELS_PER_DOCUMENT_FIGURE,
    REPORT_FILE,
    STATS_FILE,
)

INPUT_PROBLEMS_SHOWN = 3


def summary_lines(release: Path) -> list[str]:
    from imcm_build.stats import format_table1, read_stats

    stats = read_stats(release / STATS_FILE)
    lines = [f"Release: {release.resolve()}", "", format_table1(stats), ""]
    report_path = release / REPORT_FILE
    if report_path.exists():
        report = json.loads(report_path.read_text(encoding="utf-8"))
        lines.append("Build steps (in → out; dropped by reason):")
        for step in report.get("steps", []):
            dropped = ", ".join(f"{reason} {count}" for reason, count in step.get("dropped", {}).items())
            lines.append(f"  {step['step']:<10} {step['in']:>7} → {step['out']:<7} {dropped}")
            if step["step"] == "read":
                lines += _input_problems(step)
        lines.append("")
    lines.append(f"Dataset card: {release / CARD_FILE}")
    for figure in (LABEL_FREQUENCY_FIGURE, LABELS_PER_DOCUMENT_FIGURE):
        if (release / figure).exists():
            lines.append(f"Figure:       {release / figure}")
    lines.append(f'Load it:      datasets.load_dataset("{release}")')
    return lines


def _input_problems(read_step: dict) -> list[str]:
    """The first rejected records of each reason (file:line: detail) and any input files skipped: what
    the user may want to fix in the input. The rest are in build_report.json."""
    lines = []
    for reason, examples in read_step.get("drop_examples", {}).items():
        lines += [f"             {reason}: {example}" for example in examples[:INPUT_PROBLEMS_SHOWN]]
        if read_step["dropped"][reason] > INPUT_PROBLEMS_SHOWN:
            lines.append(f"             … {read_step['dropped'][reason] - INPUT_PROBLEMS_SHOWN} more {reason}")
    for skipped in read_step.get("notes", {}).get("skipped_files", []):
        lines.append(f"             skipped file: {skipped}")
    return lines


def print_release_summary(release: Path) -> None:
    print("\n".join(summary_lines(Path(release))))
