"""End to end through the CLI: the demo, a build of the real shared records, import + stats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from imcm_build.cli import main
from imcm_build.publish import verify_checksums
from imcm_build.release import SPLITS, parquet_path
from imcm_build.text import count_words
from tests.conftest import shared_path


@pytest.fixture(autouse=True)
def _datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def load(release: Path):  # noqa: ANN201 - datasets.DatasetDict
    import datasets

    return datasets.load_dataset(str(release))


def test_demo_crawls_the_simulator_and_publishes_a_loadable_release(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--books", "150"]) == 0
    printed = capsys.readouterr().out
    assert "DEMO corpus" in printed and "not Douban data" in printed
    assert "| All |" in printed and str(out / "README.md") in printed
    crawled = int(printed.split("parsed ")[1].split(" book records")[0])
    assert crawled == 150 + 4, "every generated book with a tag is reached through the simulated tag listings"
    dataset = load(out)
    assert set(dataset) == set(SPLITS)
    report = json.loads((out / "build_report.json").read_text(encoding="utf-8"))
    dropped = {reason for step in report["steps"] for reason in step["dropped"]}
    assert {"exact_duplicate", "near_duplicate", "too_short"} <= dropped
    assert verify_checksums(out) == []


def test_bad_input_exits_non_zero_with_a_message_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    records = tmp_path / "bad.jsonl"
    records.write_text('{"id": "1", "title": "t", "summary": "太短", "tags": ["a"], "url": "u"}\n{broken\n', encoding="utf-8")
    assert main(["build", "--records", str(records), "--out", str(tmp_path / "r"), "--strict"]) == 2
    assert f"{records}:2: malformed_json" in capsys.readouterr().err
    assert main(["build", "--records", str(records), "--out", str(tmp_path / "r")]) == 2
    assert "no documents left after step 'length'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists(), "a failed build leaves no release behind"
    assert main(["build", "--records", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "r")]) == 2
    assert "missing.jsonl: file_not_found" in capsys.readouterr().err


def independent_table(release: Path) -> dict[str, dict[str, float]]:
    """Table-1 numbers recomputed straight from the Parquet files, without imcm_build.stats."""
    names = (release / "labels.txt").read_text(encoding="utf-8").splitlines()
    table = {}
    everything = {"labels": [], "tokens": []}
    for split in SPLITS:
        data = pq.read_table(release / parquet_path(split)).to_pydict()
        everything["labels"] += data["labels"]
        everything["tokens"] += data["tokens"]
        table[split] = data
    table["all"] = everything
    result = {}
    for name, data in table.items():
        counts = np.bincount(np.concatenate([np.array(x, dtype=int) for x in data["labels"]]), minlength=len(names))
        occurring = np.sort(counts[counts > 0])[::-1]
        ir = occurring[0] / occurring
        result[name] = {
            "instances": len(data["labels"]),
            "cardinality": float(np.mean([len(x) for x in data["labels"]])),
            "mean_length_words": float(np.mean([count_words(t.split()) for t in data["tokens"]])),
            "ir": float(ir[: (len(ir) + 1) // 2].mean()),
            "max_ir": float(ir.max()),
        }
    return result


@pytest.mark.slow
def test_build_of_the_shared_records_loads_matches_independent_stats_and_is_deterministic(tmp_path: Path) -> None:
    records = shared_path("douban-public/records.jsonl")
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["build", "--records", str(records), "--out", str(first), "--no-figures"]) == 0
    # the second build runs in another process: determinism must not depend on process state
    done = subprocess.run(
        [sys.executable, "-m", "imcm_build.cli", "build", "--records", str(records), "--out", str(second), "--no-figures"],
        check=True, capture_output=True, text=True,
    )
    timings = done.stdout.splitlines()[-1]  # step seconds are printed, never written into the release
    assert timings.startswith("Seconds: read ") and "tokenize" in timings and "total" in timings
    assert (first / "SHA256SUMS").read_bytes() == (second / "SHA256SUMS").read_bytes()
    for split in SPLITS:
        assert (first / parquet_path(split)).read_bytes() == (second / parquet_path(split)).read_bytes()

    dataset = load(first)
    names = (first / "labels.txt").read_text(encoding="utf-8").splitlines()
    assert len(names) == 158
    assert dataset["train"].features["labels"].feature.names == names
    sizes = {split: len(dataset[split]) for split in SPLITS}
    total = sum(sizes.values())
    assert abs(sizes["train"] / total - 0.8) < 0.01 and abs(sizes["test"] / total - 0.1) < 0.01
    assert all(len(labels) >= 1 for labels in dataset["train"]["labels"])
    assert min(count_words(t.split()) for t in dataset["test"]["tokens"]) >= 50

    stats = json.loads((first / "stats.json").read_text(encoding="utf-8"))
    expected = independent_table(first)
    for name, values in expected.items():
        for key, value in values.items():
            assert stats["sets"][name][key] == pytest.approx(value, rel=1e-6), (name, key)


def test_import_and_stats_commands_on_the_shared_aapd_slice(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    aapd = shared_path("aapd/blalalt-bert")
    out = tmp_path / "aapd"
    assert main(["import", "aapd", str(aapd / "val.json"), str(aapd / "test.json"), "--out", str(out),
                 "--split", f"train={aapd / 'val.json'}", "--split", f"test={aapd / 'test.json'}",
                 "--label-map", str(aapd / "labels.json"), "--no-figures"]) == 0
    capsys.readouterr()
    assert main(["stats", str(out), "--out", str(tmp_path / "aapd-stats.json")]) == 0
    printed = capsys.readouterr().out
    raw = json.loads((aapd / "val.json").read_text()) + json.loads((aapd / "test.json").read_text())
    cardinality = sum(len(doc["label"]) for doc in raw) / len(raw)
    all_row = next(line for line in printed.splitlines() if line.startswith("| All |"))
    assert all_row.split("|")[2].strip().replace(",", "") == str(len(raw))
    assert f"{cardinality:.3f}" in all_row
    saved = json.loads((tmp_path / "aapd-stats.json").read_text(encoding="utf-8"))
    assert saved["sets"]["all"]["cardinality"] == pytest.approx(cardinality)
