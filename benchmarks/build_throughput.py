"""Build throughput: documents/s end to end, as a ratio to jieba alone on one core, in one run.

    python benchmarks/build_throughput.py [--records ../shared/data/douban-public/records.jsonl] [--copies 5]

1. jieba alone tokenizes the records' texts on one core (the reference rate, measured in this run);
2. the whole build (`imcm-build build ... --no-figures`: read → clean → dedup → tokenize → … → publish) on
   the records, in a subprocess, timed from start to exit;
3. the same on `--copies` copies of the records under new ids: deduplication must collapse them back,
   and time should grow about linearly (the script prints time ratio / size ratio);
4. `--copies` × the records as new, distinct books (summaries spliced from two records), which measures
   the build at 50k-document scale, where fixed costs (imports, jieba's dictionary, publishing) amortise.
Each build runs in a fresh subprocess so its peak memory (max RSS of the process and its workers) is
measured on its own. Target: build rate ≥ 1.0× the single-core jieba rate; peak < 2 GiB at 50k docs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_RECORDS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "douban-public" / "records.jsonl"


def jieba_alone_rate(records: Path) -> tuple[float, int]:
    from imcm_build.text import load_tokenizer, tokenize

    texts = []
    with records.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            texts.append((record["summary"] + "\n\n" + record.get("author_intro", "")).strip())
    load_tokenizer()  # dictionary load is not part of the rate
    started = time.perf_counter()
    for text in texts:
        tokenize(text)
    return len(texts) / (time.perf_counter() - started), len(texts)


def make_copies(records: Path, copies: int, out: Path) -> int:
    count = 0
    with records.open(encoding="utf-8") as source, out.open("w", encoding="utf-8") as target:
        lines = source.readlines()
        for copy in range(copies):
            for line in lines:
                record = json.loads(line)
                if copy:
                    record["id"] = f"{record['id']}{copy:02d}9"  # a new, still numeric, subject id
                target.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
    return count


def make_spliced(records: Path, copies: int, out: Path) -> int:
    """`copies` × the records as NEW books: copy k joins the first half of record i's summary to the
    second half of record i+k's (and joins their titles), so no two are (near-)duplicates — the build's cost at 5× the scale."""
    lines = [json.loads(line) for line in records.open(encoding="utf-8")]
    count = 0
    with out.open("w", encoding="utf-8") as target:
        for copy in range(copies):
            for index, record in enumerate(lines):
                other = lines[(index + copy) % len(lines)]
                spliced = dict(record)
                if copy:
                    first, second = record["summary"], other["summary"]
                    spliced["summary"] = first[: len(first) // 2] + second[len(second) // 2 :]
                    spliced["id"] = f"{record['id']}{copy:02d}9"
                    spliced["title"] = f"{record['title']}（{other['title']}）"
                target.write(json.dumps(spliced, ensure_ascii=False) + "\n")
                count += 1
    return count


def timed_build(records: Path, out: Path) -> dict:
    """Run `imcm-build build` (what a user runs) in a subprocess; return seconds, peak RSS (MiB) and steps."""
    command = [sys.executable, "-m", "imcm_build.cli", "build", "--records", str(records), "--out", str(out),
               "--no-figures"]
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"build of {records} failed:\n{done.stderr[-3000:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    timing_line = next(line for line in done.stdout.splitlines() if line.startswith("Seconds: "))
    timings = dict(item.rsplit(" ", 1) for item in timing_line.removeprefix("Seconds: ").split(", "))
    steps = json.loads((out / "build_report.json").read_text(encoding="utf-8"))["steps"]
    for step in steps:
        step["seconds"] = float(timings[step["step"]])
    return {"seconds": seconds, "peak_mib": max(peak_kib, before) / 1024, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=Path, default=Path(os.environ.get("IMCM_SHARED_DATA", DEFAULT_RECORDS.parents[1])) / "douban-public" / "records.jsonl")
    parser.add_argument("--copies", type=int, default=5)
    args = parser.parse_args()

    jieba_rate, n_docs = jieba_alone_rate(args.records)
    print(f"jieba alone, 1 core:       {jieba_rate:8.0f} docs/s  ({n_docs} docs)")
    with tempfile.TemporaryDirectory() as scratch:
        scratch_path = Path(scratch)
        single = timed_build(args.records, scratch_path / "single")
        rate = n_docs / single["seconds"]
        print(f"whole build, {os.cpu_count()} cores:      {rate:8.0f} docs/s  ratio to jieba alone {rate / jieba_rate:.2f}x"
              f"  ({single['seconds']:.1f} s, peak {single['peak_mib']:.0f} MiB)")
        copies_file = scratch_path / "copies.jsonl"
        n_copies = make_copies(args.records, args.copies, copies_file)
        many = timed_build(copies_file, scratch_path / "copies")
        many_rate = n_copies / many["seconds"]
        dedup = next(step for step in many["steps"] if step["step"] == "dedup")
        print(f"whole build, {args.copies}x copies:    {many_rate:8.0f} docs/s  ratio to jieba alone {many_rate / jieba_rate:.2f}x"
              f"  ({n_copies} docs, {many['seconds']:.1f} s, peak {many['peak_mib']:.0f} MiB)")
        print(f"dedup collapsed {dedup['in']} → {dedup['out']} documents ({dedup['dropped']})")
        print(f"time growth {many['seconds'] / single['seconds']:.2f}x for {n_copies / n_docs:.1f}x the documents"
              f" (linear = {n_copies / n_docs:.1f}x)")
        for step in many["steps"]:
            print(f"  {step['step']:<10} {step['seconds']:7.2f} s  {step['in']:>6} → {step['out']}")
        spliced_file = scratch_path / "spliced.jsonl"
        n_spliced = make_spliced(args.records, args.copies, spliced_file)
        big = timed_build(spliced_file, scratch_path / "spliced")
        big_rate = n_spliced / big["seconds"]
        kept = next(step for step in big["steps"] if step["step"] == "dedup")["out"]
        print(f"whole build, {args.copies}x NEW books: {big_rate:8.0f} docs/s  ratio to jieba alone {big_rate / jieba_rate:.2f}x"
              f"  ({n_spliced} docs, {kept} after dedup, {big['seconds']:.1f} s, peak {big['peak_mib']:.0f} MiB)")
        for step in big["steps"]:
            print(f"  {step['step']:<10} {step['seconds']:7.2f} s  {step['in']:>6} → {step['out']}")


if __name__ == "__main__":
    main()
