"""records JSONL → a complete release: read → steps → publish, with one build report."""

from __future__ import annotations

import hashlib
import importlib
import time
from pathlib import Path
from typing import Any

from imcm_build.config import BuildConfig
from imcm_build.pipeline import read_documents, run_steps
from imcm_build.steps import build_steps
from imcm_build.steps.labels import Labels

# Where the release is written and how many processes wrote it are not part of what it is: recording
# them would make a rebuild elsewhere or with other --workers differ in build_report.json, the card and
# SHA256SUMS although the data is identical.
OPTIONS_NOT_RECORDED = frozenset({"out", "workers"})


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_release(config: BuildConfig, timings: dict[str, float] | None = None) -> Path:
    """Build and publish the release described by `config`; return its folder.

    Raises BuildError (every document dropped, --strict rejection, ...) or RecordError (missing
    input file); the output folder is only created once the whole release is complete. Step timings
    go into `timings` (when given), not into the release, so that rebuilding gives identical files.
    """
    config.validate()
    started = time.perf_counter()
    inputs = [{"path": str(path), "sha256": file_sha256(path)} for path in _existing(config.records)]
    docs, read_report, _ = read_documents(config.records, strict=config.strict)  # rejections: in read_report
    steps = build_steps(config)
    # publishing needs datasets, pandas and pyarrow (~1 s to import): imported while the workers work
    result = run_steps(docs, steps, reports=[read_report], workers=config.workers,
                       warm_ups=[lambda: importlib.import_module("imcm_build.publish")])
    labels_step = next(step for step in steps if isinstance(step, Labels))
    recorded_config = {
        key: value for key, value in config.to_dict().items() if key not in OPTIONS_NOT_RECORDED
    }
    report: dict[str, Any] = {
        "name": config.name,
        "config": recorded_config,
        "inputs": inputs,
        "steps": [_without_timing(step_report.to_dict()) for step_report in result.reports],
        "documents_published": len(result.documents),
    }
    from imcm_build.publish import publish_release

    release = publish_release(
        result.documents,
        labels_step.label_names_,
        Path(config.out),
        build_report=report,
        config=recorded_config,
        name=config.name,
        figures=config.figures,
    )
    if timings is not None:
        timings.update({step_report.name: step_report.seconds for step_report in result.reports})
        timings["total"] = time.perf_counter() - started
    return release


def _without_timing(step: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in step.items() if key != "seconds"}


def _existing(paths: list[str]) -> list[str]:
    from imcm_build.records import RecordError

    if not paths:
        raise RecordError("<config>", "no_input", "no records file given (--records FILE ...)")
    for path in paths:
        if not Path(path).is_file():
            raise RecordError(str(path), "file_not_found", "no such records file")
    return list(paths)
