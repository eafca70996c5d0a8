"""AltXML training throughput on CPU: the trainer vs a plain reference loop, as a ratio in one run.

    python benchmarks/train_throughput.py [--records ../shared/data/douban-public/records.jsonl]
                                          [--docs 640] [--threads 1]

1. A release is built once from the records with `imcm_build.build.build_release` (paper settings:
   158 labels, 50-word minimum) in a temporary folder.
2. The trainer: `imcm_train.train.fit` for one epoch of AltXML (paper hyper-parameters, batch 64) on the
   first `--docs` training documents: length-bucketed batches padded to each batch's longest
   document, packed BiLSTM. Its samples/s and peak memory come from the run's summary.json.
3. The reference, same model, seed, optimizer and documents: every document padded to the longest
   document of the dataset, batches in plain shuffled order, and `lengths` set to that full width so
   the LSTM runs over the padding too (no packing): what a straightforward loop does.

Target: trainer samples/s ≥ 2× the reference. Peak memory: VmHWM growth over each measured stretch
(`train.PeakMemory`, reset via /proc/self/clear_refs).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from imcm_build.build import build_release
from imcm_build.config import BuildConfig
from imcm_build.release import read_label_names, read_split
from imcm_train.data import DEFAULT_MAX_LENGTH, Vocabulary, encode
from imcm_train.models import build_model
from imcm_train.train import PeakMemory, TrainConfig, fit, seed_everything

DEFAULT_RECORDS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "douban-public" / "records.jsonl"
SEED = 42


def subset_release(release: Path, docs: int, folder: Path) -> Path:
    """The release with its training split cut to the first `docs` documents (other splits kept)."""
    import shutil

    import pyarrow.parquet as pq

    shutil.copytree(release, folder)
    train_file = folder / "data" / "train-00000-of-00001.parquet"
    table = pq.read_table(train_file)
    pq.write_table(table.slice(0, min(docs, table.num_rows)), train_file)
    return folder


def trainer_rate(release: Path, out: Path) -> dict:
    fit(TrainConfig(release=str(release), out=str(out), model="altxml", epochs=1, seed=SEED, progress=False))
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def reference_rate(release: Path, batch_size: int = 64) -> dict:
    """A plain loop: one padding width for the whole dataset, shuffled batches, no packing."""
    train = read_split(release, "train")
    tokens = [text.split() for text in train.tokens]
    num_labels = len(read_label_names(release))
    vocabulary = Vocabulary.build(tokens)
    ids = encode(vocabulary, tokens, DEFAULT_MAX_LENGTH)
    width = max(len(doc) for doc in ids)
    padded = torch.zeros(len(ids), width, dtype=torch.long)
    for row, doc in enumerate(ids):
        padded[row, : len(doc)] = torch.tensor(doc)
    targets = torch.zeros(len(ids), num_labels)
    for row, labels in enumerate(train.labels):
        targets[row, labels] = 1.0
    memory = PeakMemory(torch.device("cpu"))
    seed_everything(SEED)
    model = build_model("altxml", len(vocabulary), num_labels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    order = np.random.default_rng(SEED).permutation(len(ids))
    started = time.perf_counter()
    for start in range(0, len(order), batch_size):
        batch = torch.as_tensor(order[start : start + batch_size])
        full_width = torch.full((len(batch),), width, dtype=torch.long)
        loss = model.loss(padded[batch], full_width, targets[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
    seconds = time.perf_counter() - started
    return {"samples_per_second": len(ids) / seconds, "train_seconds": seconds, "peak_memory_mib": memory.peak_mib(),
            "padded_width": width, "mean_length": float(np.mean([len(doc) for doc in ids]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=Path, default=DEFAULT_RECORDS)
    parser.add_argument("--docs", type=int, default=640, help="training documents timed (default 640)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: steadier timings on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        started = time.perf_counter()
        full = build_release(BuildConfig(records=[str(args.records)], out=str(temp / "release"), figures=False))
        print(f"release built from {args.records} in {time.perf_counter() - started:.1f} s")
        release = subset_release(full, args.docs, temp / "subset")
        ours = trainer_rate(release, temp / "run")
        reference = reference_rate(release)
    ratio = ours["samples_per_second"] / reference["samples_per_second"]
    print(f"training documents timed: {args.docs} (or fewer if the split is smaller), torch threads: {args.threads}")
    print(f"mean length {reference['mean_length']:.1f} tokens; reference pads every batch to {reference['padded_width']}")
    print(f"trainer:   {ours['samples_per_second']:8.1f} samples/s  peak {ours['peak_memory_mib']:7.1f} MiB "
          f"(whole fit incl. evaluation, {ours['memory_method']})")
    print(f"reference: {reference['samples_per_second']:8.1f} samples/s  peak {reference['peak_memory_mib']:7.1f} MiB")
    print(f"ratio: {ratio:.2f}x (target >= 2x) -> {'PASS' if ratio >= 2 else 'FAIL'}")


if __name__ == "__main__":
    main()
