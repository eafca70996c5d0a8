"""The `imcm-build` command line: options from --config files, flags, and the messages users see."""

from __future__ import annotations

import gzip
import json
import re
from itertools import islice
from pathlib import Path

import pytest

from imcm_build.cli import build_parser, config_from_args, main
from imcm_build.config import BuildConfig
from imcm_build.release import LABEL_FREQUENCY_FIGURE, LABELS_PER_DOCUMENT_FIGURE, REPORT_FILE
from tests.conftest import shared_path


@pytest.fixture(autouse=True)
def _datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def real_records_with_problems(folder: Path, n_records: int = 400) -> Path:
    """The first `n_records` shared records, then a second copy of the first one and a cut-off line."""
    with shared_path("douban-public/records.jsonl").open(encoding="utf-8") as handle:
        lines = list(islice(handle, n_records))
    path = folder / "records.jsonl"
    path.write_text("".join(lines) + lines[0] + lines[1][:80] + "\n", encoding="utf-8")
    return path


def test_records_listed_in_the_config_file_are_built(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    records = real_records_with_problems(tmp_path)
    config = tmp_path / "build.toml"
    config.write_text(f'[build]\nrecords = ["{records}"]\nworkers = 1\n', encoding="utf-8")
    out = tmp_path / "release"
    assert main(["build", "--config", str(config), "--out", str(out), "--no-figures"]) == 0
    report = json.loads((out / REPORT_FILE).read_text(encoding="utf-8"))
    assert report["config"]["records"] == [str(records)]
    read = report["steps"][0]
    assert read["dropped"] == {"duplicate_id": 1, "malformed_json": 1}
    first_id = json.loads(records.read_text(encoding="utf-8").splitlines()[0])["id"]
    assert read["drop_examples"]["duplicate_id"] == [f"{records}:401: id {first_id!r} already read at {records}:1"]
    assert read["drop_examples"]["malformed_json"] == [f"{records}:402: Invalid control character at column 81"]
    printed = capsys.readouterr().out
    assert f"duplicate_id: {records}:401: id {first_id!r} already read at {records}:1" in printed


def test_relative_paths_in_the_config_file_are_taken_from_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "configs").mkdir()
    config = tmp_path / "configs" / "build.toml"
    config.write_text('records = ["../data/records.jsonl", "/abs/other.jsonl"]\nout = "../release"\n', encoding="utf-8")
    monkeypatch.chdir("/")  # wherever the command runs
    built = BuildConfig.from_toml(config)
    assert [Path(record).resolve() for record in built.records] == [tmp_path / "data" / "records.jsonl",
                                                                     Path("/abs/other.jsonl")]
    assert Path(built.out).resolve() == tmp_path / "release"


def test_records_flag_is_optional_and_lists_every_file() -> None:
    parser = build_parser()
    args = parser.parse_args(["build", "--out", "o"])
    assert config_from_args(args, args.records).records == []
    args = parser.parse_args(["build", "--out", "o", "--records", "a.jsonl", "b.jsonl"])
    assert config_from_args(args, args.records).records == ["a.jsonl", "b.jsonl"]


def test_records_flag_wins_over_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "build.toml"
    config.write_text('records = ["from-file.jsonl"]\nseed = 3\n', encoding="utf-8")
    parser = build_parser()
    args = parser.parse_args(["build", "--config", str(config), "--out", "o"])
    assert (config_from_args(args, args.records).records, config_from_args(args, args.records).seed) == (
        [str(tmp_path / "from-file.jsonl")], 3,  # taken from the file's folder
    )
    args = parser.parse_args(["build", "--config", str(config), "--out", "o", "--records", "flag.jsonl", "--seed", "4"])
    config_built = config_from_args(args, args.records)
    assert (config_built.records, config_built.seed) == (["flag.jsonl"], 4)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("min_words = \n", r"build.toml: not valid TOML: Invalid value \(at line 1, column 13\)"),
        ('[build]\nmin_words = "50"\n', r"build.toml: option 'min_words' must be an integer, got '50'"),
        ("split_ratios = [0.8, 0.2]\n", r"build.toml: option 'split_ratios' must be a list of three numbers"),
        ('records = "r.jsonl"\n', r"build.toml: option 'records' must be a list of file paths, got 'r.jsonl'"),
        ("near_dedup = 1\n", r"build.toml: option 'near_dedup' must be true or false, got 1"),
        ("build = 3\n", r"build.toml: \[build\] must be a table of build options"),
    ],
)
def test_a_bad_config_file_is_a_one_line_error_naming_file_and_option(
    tmp_path: Path, capsys: pytest.CaptureFixture, toml: str, message: str
) -> None:
    config = tmp_path / "build.toml"
    config.write_text(toml, encoding="utf-8")
    assert main(["build", "--config", str(config), "--records", "r.jsonl", "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("imcm-build build: error: ") and len(error.splitlines()) == 1
    assert str(config.parent) in error
    assert re.search(message, error), error


def test_an_integer_threshold_in_the_config_file_is_a_number(tmp_path: Path) -> None:
    config = tmp_path / "build.toml"
    config.write_text("minhash_threshold = 1\nsplit_ratios = [0.8, 0.1, 0.1]\n", encoding="utf-8")
    args = build_parser().parse_args(["build", "--config", str(config), "--out", "o"])
    built = config_from_args(args, None)
    assert built.minhash_threshold == 1.0 and isinstance(built.minhash_threshold, float)
    built.validate()


def test_the_number_of_workers_changes_no_file_of_the_release(tmp_path: Path) -> None:
    records = real_records_with_problems(tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    for out, workers in ((one, "1"), (two, "2")):
        assert main(["build", "--records", str(records), "--out", str(out), "--no-figures", "--workers", workers]) == 0
    assert "workers" not in json.loads((one / REPORT_FILE).read_text(encoding="utf-8"))["config"]
    files = sorted(path.relative_to(one) for path in one.rglob("*") if path.is_file())
    assert files and files == sorted(path.relative_to(two) for path in two.rglob("*") if path.is_file())
    for relative in files:
        assert (one / relative).read_bytes() == (two / relative).read_bytes(), relative


def test_a_gzip_cut_short_is_an_error_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    records = real_records_with_problems(tmp_path)
    whole = gzip.compress(records.read_bytes())
    cut = tmp_path / "records.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    assert main(["build", "--records", str(cut), "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"imcm-build build: error: {cut}:") and "truncated_gzip" in error
    assert not (tmp_path / "o").exists()


def test_a_split_without_equals_sign_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_status:
        main(["import", "aapd", "val.json", "--out", "o", "--split", "val.json"])
    assert exit_status.value.code == 2
    error = capsys.readouterr().err
    assert "argument --split: 'val.json' is not SPLIT=FILE (for example train=val.json)" in error


def test_figures_command_writes_into_out_figures(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    records = real_records_with_problems(tmp_path)
    release = tmp_path / "release"
    assert main(["build", "--records", str(records), "--out", str(release), "--no-figures", "--workers", "1"]) == 0
    capsys.readouterr()
    out = tmp_path / "drawn"
    assert main(["figures", str(release), "--out", str(out)]) == 0
    expected = [out / LABEL_FREQUENCY_FIGURE, out / LABELS_PER_DOCUMENT_FIGURE]
    assert capsys.readouterr().out.split() == [str(path) for path in expected]
    assert all(path.parent == out / "figures" and path.stat().st_size > 0 for path in expected)


def test_a_config_path_that_cannot_be_read_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["build", "--config", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == f"imcm-build build: error: [Errno 21] Is a directory: '{tmp_path}'\n"
