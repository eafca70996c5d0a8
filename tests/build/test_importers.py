from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pytest

from imcm_build import release, stats
from imcm_build.importers import ImportFormatError, import_release, read_label_map
from imcm_build.importers.aapd import read_json_file
from imcm_build.publish import verify_checksums
from tests.conftest import shared_path


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def _words(tokens: list[str]) -> int:
    return sum(1 for token in tokens if any(ch.isalnum() for ch in token))


def _train_order(release_dir: Path) -> list[str]:
    """Label names sorted by descending train frequency, ties by name, computed from the Parquet."""
    names = release.read_label_names(release_dir)
    train = Counter(names[i] for ids in release.read_split(release_dir, "train").labels for i in ids)
    return sorted(train, key=lambda name: (-train[name], name))


def test_aapd_val_and_test_slice(tmp_path: Path) -> None:
    folder = shared_path("aapd/blalalt-bert")
    raw = [doc for name in ("val.json", "test.json") for doc in json.loads((folder / name).read_text())]
    out = import_release(
        "aapd", [folder], tmp_path / "aapd", split_map={"train": "val.json", "test": "test.json"}
    )

    whole = stats.release_stats(out)["sets"]["all"]
    assert whole["instances"] == len(raw) == 2000
    assert whole["labels"] == whole["num_labels"] == 54
    assert whole["cardinality"] == pytest.approx(np.mean([len(doc["label"]) for doc in raw]))
    assert whole["cardinality"] == pytest.approx(2.41, abs=0.005)
    assert whole["mean_length_words"] == pytest.approx(np.mean([_words(doc["text"].split()) for doc in raw]))
    assert whole["ir"] == pytest.approx(7.1, abs=0.1)

    train, validation = release.read_split(out, "train"), release.read_split(out, "validation")
    assert len(train.ids) + len(validation.ids) == 1000
    assert len(validation.ids) == 100  # exactly 10% carved out of "train" (val.json)
    assert all(doc_id.startswith("aapd-val-") for doc_id in train.ids + validation.ids)
    assert release.read_label_names(out) == _train_order(out)
    report = json.loads((out / release.REPORT_FILE).read_text())
    assert report["steps"][1]["notes"]["validation"] == "carved from train"
    assert report["steps"][1]["notes"]["moved_to_validation"] == len(validation.ids)
    assert verify_checksums(out) == []


def test_aapd_content_labels_format_reads_the_same_test_documents() -> None:
    lr_gcn = read_json_file(shared_path("aapd/lr-gcn/test.json"), lowercase_labels=True)
    blalalt = json.loads(shared_path("aapd/blalalt-bert/test.json").read_text())
    assert lr_gcn.format == "json-content-labels" and lr_gcn.tag == "test"
    assert [sorted(doc.labels) for doc in lr_gcn.documents] == [sorted(doc["label"]) for doc in blalalt]


def _write_sgm(folder: Path, split: str, docs: list[dict]) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"text_{split}").write_text("".join(doc["text"] + "\n" for doc in docs))
    (folder / f"label_{split}").write_text("".join(" ".join(doc["label"]) + "\n" for doc in docs))


def test_aapd_sgm_files_keep_their_splits_and_list_unused_labels_last(tmp_path: Path) -> None:
    docs = json.loads(shared_path("aapd/blalalt-bert/val.json").read_text())[:300]
    sgm = tmp_path / "sgm"
    for split, part in (("train", docs[:200]), ("val", docs[200:250]), ("test", docs[250:])):
        _write_sgm(sgm, split, part)
    label_map = shared_path("aapd/blalalt-bert/labels.json")
    out = import_release("aapd", [sgm], tmp_path / "out", label_map=label_map, figures=False)

    assert release.read_split(out, "validation").ids[0] == "aapd-val-000001"
    assert [len(release.read_split(out, s).ids) for s in release.SPLITS] == [200, 50, 50]
    names = release.read_label_names(out)
    occurring = {label for doc in docs for label in doc["label"]}
    assert set(names) == set(read_label_map(label_map))
    assert names[len(occurring) :] == sorted(set(names) - occurring)
    assert names[: len(_train_order(out))] == _train_order(out)
    tokens = release.read_split(out, "train").tokens
    assert [t.split() for t in tokens] == [doc["text"].split() for doc in docs[:200]]


def _split_rcv1(tmp_path: Path, train_lines: int) -> tuple[Path, Path, list[dict]]:
    lines = shared_path("rcv1/rcv1_dev.json").read_text(encoding="utf-8").splitlines(keepends=True)
    train, test = tmp_path / "rcv1_train.json", tmp_path / "rcv1_test.json"
    train.write_text("".join(lines[:train_lines]), encoding="utf-8")
    test.write_text("".join(lines[train_lines:]), encoding="utf-8")
    return train, test, [json.loads(line) for line in lines]


def test_rcv1_dev_split_with_label_meanings(tmp_path: Path) -> None:
    train, test, raw = _split_rcv1(tmp_path, 1800)
    label_map = shared_path("rcv1/rcv1.label_meaning")
    out = import_release("rcv1", [train, test], tmp_path / "rcv1", label_map=label_map)

    whole = stats.release_stats(out)["sets"]["all"]
    assert whole["instances"] == len(raw) == 2316
    assert (
        whole["num_labels"] == 103
        and whole["labels"] == len({x for doc in raw for x in doc["doc_label"]}) == 98
    )
    assert whole["cardinality"] == pytest.approx(np.mean([len(doc["doc_label"]) for doc in raw]))
    assert whole["cardinality"] == pytest.approx(3.20, abs=0.005)
    assert whole["mean_length_words"] == pytest.approx(np.mean([_words(doc["doc_token"]) for doc in raw]))
    assert release.read_split(out, "test").ids[:2] == ["rcv1-test-000001", "rcv1-test-000002"]
    card = (out / release.CARD_FILE).read_text(encoding="utf-8")
    assert "| C11 | STRATEGY/PLANS |" in card and "| C313 | MARKET SHARE |" in card


def test_rcv1_malformed_line_is_named(tmp_path: Path) -> None:
    train, test, _ = _split_rcv1(tmp_path, 100)
    lines = train.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2][:50] + "\n"
    train.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(ImportFormatError, match=rf"{train}:3: malformed JSON"):
        import_release("rcv1", [train, test], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_rcv1_label_outside_the_map_is_named(tmp_path: Path) -> None:
    train, test, _ = _split_rcv1(tmp_path, 100)
    lines = train.read_text(encoding="utf-8").splitlines(keepends=True)
    entry = json.loads(lines[4])
    entry["doc_label"].append("C99")
    lines[4] = json.dumps(entry) + "\n"
    train.write_text("".join(lines), encoding="utf-8")
    label_map = shared_path("rcv1/rcv1.label_meaning")
    with pytest.raises(ImportFormatError, match=rf"{train}:5: label 'C99' is not in the label map"):
        import_release("rcv1", [train, test], tmp_path / "out", label_map=label_map)


def test_aapd_label_outside_the_map_is_named(tmp_path: Path) -> None:
    lr_gcn_test = shared_path("aapd/lr-gcn/test.json")  # original-case labels (cs.CV)
    blalalt = shared_path("aapd/blalalt-bert")  # lower-case labels and label map
    with pytest.raises(
        ImportFormatError, match=r"lr-gcn/test.json\[0\]: label 'cs.CV' is not in the label map"
    ):
        import_release(
            "aapd",
            [lr_gcn_test, blalalt / "val.json"],
            tmp_path / "o",
            split_map={"train": "val.json", "test": "test.json"},
            label_map=blalalt / "labels.json",
        )


def test_sgm_files_must_be_parallel(tmp_path: Path) -> None:
    docs = json.loads(shared_path("aapd/blalalt-bert/val.json").read_text())[:20]
    _write_sgm(tmp_path, "train", docs)
    (tmp_path / "label_train").write_text("cs.it\n")
    with pytest.raises(ImportFormatError, match="has 20 lines but .*label_train has 1"):
        import_release("aapd", [tmp_path / "text_train"], tmp_path / "o")


@pytest.mark.parametrize(
    ("split_map", "message"),
    [
        (None, "no train input: train and test are required"),
        ({"train": "val.json"}, "test.json: input not assigned to any split by split_map"),
        ({"train": "val.json", "test": "dev.json"}, "test='dev.json' matches 0 inputs"),
        ({"training": "val.json"}, "unknown split\\(s\\) training"),
    ],
)
def test_split_assignment_errors(tmp_path: Path, split_map: dict | None, message: str) -> None:
    folder = shared_path("aapd/blalalt-bert")
    with pytest.raises(ImportFormatError, match=message):
        import_release("aapd", [folder], tmp_path / "o", split_map=split_map)


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown import kind 'eurlex'; known: aapd, rcv1"):
        import_release("eurlex", [], tmp_path / "o")


def test_a_folder_contributes_only_aapd_files_and_lists_the_others_skipped(tmp_path: Path) -> None:
    blalalt, lr_gcn = shared_path("aapd/blalalt-bert"), shared_path("aapd/lr-gcn")
    out = import_release(
        "aapd", [blalalt / "val.json", lr_gcn], tmp_path / "aapd", split_map={"train": "val.json", "test": "test.json"},
        label_map=blalalt / "labels.json", lowercase_labels=True, figures=False,
    )
    report = json.loads((out / release.REPORT_FILE).read_text())
    assert report["inputs"]["test"]["paths"] == [str(lr_gcn / "test.json")]
    assert report["steps"][0]["notes"]["skipped_files"] == [f"{lr_gcn / 'stats.json'} (not an input of this format)"]
    assert report["config"]["lowercase_labels"] is True
    lr_gcn_labels = [sorted(label.lower() for label in labels) for labels in json.loads((lr_gcn / "test.json").read_text())["labels"]]
    names = release.read_label_names(out)
    test = release.read_split(out, "test")
    assert [sorted(names[i] for i in ids) for ids in test.labels] == lr_gcn_labels
    assert set(names) == set(json.loads((blalalt / "labels.json").read_text()))


def test_lowercase_labels_flag_imports_lr_gcn_test_with_blalalt_labels(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from imcm_build.cli import main

    blalalt, lr_gcn = shared_path("aapd/blalalt-bert"), shared_path("aapd/lr-gcn")
    arguments = ["import", "aapd", str(blalalt / "val.json"), str(lr_gcn), "--split", "train=val.json",
                 "--split", "test=test.json", "--label-map", str(blalalt / "labels.json"), "--no-figures"]
    assert main([*arguments, "--out", str(tmp_path / "without")]) == 2
    assert "label 'cs.CV' is not in the label map" in capsys.readouterr().err
    assert main([*arguments, "--lowercase-labels", "--out", str(tmp_path / "with")]) == 0
    printed = capsys.readouterr().out
    assert f"skipped file: {lr_gcn / 'stats.json'} (not an input of this format)" in printed
    assert main(["import", "rcv1", "x.json", "--lowercase-labels", "--out", str(tmp_path / "r")]) == 2
    assert "--lowercase-labels applies to AAPD only" in capsys.readouterr().err
