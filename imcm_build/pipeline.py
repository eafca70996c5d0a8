"""Runs the build steps in order over one document type and collects the build report."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tqdm import tqdm

from imcm_build.document import Document
from imcm_build.records import Record, Rejection, read_records
from imcm_build.report import BuildError, StepReport


class Step(Protocol):
    """One build step: documents in, documents out; every removed document goes to `report.drop`."""

    name: str

    def run(self, docs: list[Document], report: StepReport) -> list[Document]: ...


@dataclass
class PipelineResult:
    documents: list[Document]
    reports: list[StepReport] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def read_documents(paths: Sequence[str | Path], strict: bool = False) -> tuple[list[Document], StepReport, list[Rejection]]:
    """Step 1: read and validate records. With `strict`, the first rejection aborts the build."""
    report = StepReport("read")
    started = time.perf_counter()
    docs: list[Document] = []
    rejections: list[Rejection] = []
    for item in tqdm(read_records(paths), desc="read", unit="record", disable=None):
        report.n_in += 1
        if isinstance(item, Rejection):
            if strict:
                raise BuildError(f"--strict: rejected record {item}")
            rejections.append(item)
            report.drop(item.reason, item.origin)
            continue
        assert isinstance(item, Record)
        docs.append(Document.from_record(item))
    report.n_out = len(docs)
    report.seconds = time.perf_counter() - started
    return docs, report, rejections


def run_steps(docs: list[Document], steps: Iterable[Step], reports: list[StepReport] | None = None) -> PipelineResult:
    """Run `steps` in order; raise BuildError naming the step that left no documents."""
    reports = [] if reports is None else reports
    for step in steps:
        report = StepReport(step.name, n_in=len(docs))
        started = time.perf_counter()
        docs = step.run(docs, report)
        report.n_out = len(docs)
        report.seconds = time.perf_counter() - started
        reports.append(report)
        if report.n_in - report.n_dropped != report.n_out:
            raise BuildError(
                f"step {step.name!r} lost documents without a reason: in {report.n_in}, "
                f"dropped {report.n_dropped}, out {report.n_out}"
            )
        if not docs:
            reasons = ", ".join(f"{k}: {v}" for k, v in report.dropped.most_common()) or "none given"
            raise BuildError(f"no documents left after step {step.name!r} (dropped: {reasons})")
    return PipelineResult(docs, reports)
