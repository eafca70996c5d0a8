"""Runs the build steps in order over one document type and collects the build report.

Steps spread their per-document work (cleaning, MinHash signatures, tokenizing) over the cores with
`parallel_map`, which uses the worker pool `run_steps` starts once for the whole build. Before the
workers fork, each step's optional ``load()`` runs (jieba's dictionary: loaded once, shared by all
workers). The steps' optional ``warm_up()`` (imports that later steps and publishing need, ~2 s) wait
until a step calls `run_warm_ups` while the workers have a long queue (tokenizing): this process then
imports while they work, instead of before they start or while it has its own work to do.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Protocol, TypeVar

from tqdm import tqdm

from imcm_build.document import Document
from imcm_build.records import Record, Rejection, read_records
from imcm_build.report import BuildError, StepReport


class Step(Protocol):
    """One build step: documents in, documents out; every removed document goes to `report.drop`.

    Optional: ``load()`` (state its per-document work needs, loaded before the workers fork) and
    ``warm_up()`` (imports its ``run`` needs, done while the workers tokenize: see `run_warm_ups`).
    """

    name: str

    def run(self, docs: list[Document], report: StepReport) -> list[Document]: ...


Item = TypeVar("Item")
Result = TypeVar("Result")

PARALLEL_MIN_ITEMS = 400  # below this, starting work in the pool costs more than it saves
CHUNKS_PER_WORKER = 8  # enough chunks that both workers stay busy to the end

_pool: Pool | None = None
_pool_size = 1
_pending_warm_ups: list[Callable[[], object]] = []


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def chunked(items: Sequence[Item], n_chunks: int) -> list[Sequence[Item]]:
    """`items` in at most `n_chunks` contiguous chunks of near-equal size."""
    size = -(-len(items) // max(n_chunks, 1))
    return [items[start : start + size] for start in range(0, len(items), size)]


def _apply_to_chunk(function: Callable[[Item], Result], chunk: Sequence[Item]) -> list[Result]:
    return [function(item) for item in chunk]


def run_warm_ups() -> None:
    """Run the warm-ups `run_steps` registered (each once)."""
    while _pending_warm_ups:
        _pending_warm_ups.pop(0)()


def parallel_map(function: Callable[[Item], Result], items: Sequence[Item], desc: str = "",
                 meanwhile: Callable[[], object] | None = None) -> list[Result]:
    """`[function(item) for item in items]`, in the build's worker pool when one is running and the input
    is large enough; `meanwhile` runs here once the work is handed out. `function` must be a module-level
    function (it is pickled by name)."""
    bar = tqdm(total=len(items), desc=desc or None, unit="doc", disable=None)
    results: list[Result] = []
    with bar:
        if _pool is None or len(items) < PARALLEL_MIN_ITEMS:
            if meanwhile is not None:
                meanwhile()
            for chunk in chunked(items, 50) if items else []:
                results += _apply_to_chunk(function, chunk)
                bar.update(len(chunk))
            return results
        chunks = chunked(items, _pool_size * CHUNKS_PER_WORKER)
        mapped = _pool.imap(partial(_apply_to_chunk, function), chunks)
        if meanwhile is not None:
            meanwhile()
        for chunk_results in mapped:
            results += chunk_results
            bar.update(len(chunk_results))
    return results


def _pool_context() -> multiprocessing.context.BaseContext:
    # fork: workers start at once and share what this process loaded (jieba's dictionary)
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _load_in_worker(steps: Sequence[Step]) -> None:
    for step in steps:  # a no-op after fork (already loaded); needed with spawn
        if hasattr(step, "load"):
            step.load()


@contextmanager
def worker_pool(steps: Sequence[Step], workers: int = 0,
                warm_ups: Iterable[Callable[[], object]] = ()) -> Iterator[int]:
    """Run `steps`' ``load()``, start `workers` processes (0 = all cores; 1 = none: everything runs
    here) for `parallel_map`, and register the steps' ``warm_up()`` and `warm_ups` for `run_warm_ups`
    (a warm-up no step ran costs nothing: its imports happen where they are needed). Yields the number
    of workers."""
    global _pool, _pool_size
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0 = all cores), got {workers}")
    workers = workers or available_cores()
    _load_in_worker(steps)
    pool = _pool_context().Pool(workers, initializer=_load_in_worker, initargs=(steps,)) if workers > 1 else None
    _pending_warm_ups[:] = [step.warm_up for step in steps if hasattr(step, "warm_up")] + list(warm_ups)
    _pool, _pool_size = pool, workers
    try:
        yield workers
    finally:
        _pool, _pool_size = None, 1
        _pending_warm_ups.clear()
        if pool is not None:
            pool.terminate()
            pool.join()


@dataclass
class PipelineResult:
    documents: list[Document]
    reports: list[StepReport] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def read_documents(paths: Sequence[str | Path], strict: bool = False) -> tuple[list[Document], StepReport, list[Rejection]]:
    """Step 1: read and validate records. With `strict`, the first rejection aborts the build; so does
    reading no record at all (BuildError naming the files and the rejection reasons)."""
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
            report.drop(item.reason, item.origin, item.detail)
            continue
        assert isinstance(item, Record)
        docs.append(Document.from_record(item))
    report.n_out = len(docs)
    report.seconds = time.perf_counter() - started
    if not docs:
        raise BuildError(_nothing_read(paths, report))
    return docs, report, rejections


def _nothing_read(paths: Sequence[str | Path], report: StepReport) -> str:
    files = ", ".join(map(str, paths))
    if not report.n_in:
        return f"no records read: the records file(s) are empty ({files})"
    reasons = "; ".join(
        f"{reason}: {count} (e.g. {report.examples[reason][0]})" for reason, count in report.dropped.most_common()
    )
    return f"no records read: all {report.n_in} line(s) of {files} were rejected ({reasons})"


def run_steps(docs: list[Document], steps: Sequence[Step], reports: list[StepReport] | None = None,
              workers: int = 0, warm_ups: Iterable[Callable[[], object]] = ()) -> PipelineResult:
    """Run `steps` in order, with a worker pool of `workers` processes (see `worker_pool`); raise
    BuildError naming the step that left no documents."""
    reports = [] if reports is None else reports
    with worker_pool(steps, workers, warm_ups):
        return _run_in_order(docs, steps, reports)


def _run_in_order(docs: list[Document], steps: Sequence[Step], reports: list[StepReport]) -> PipelineResult:
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
