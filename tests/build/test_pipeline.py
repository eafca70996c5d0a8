from __future__ import annotations

from pathlib import Path

import pytest

from imcm_build.config import BuildConfig
from imcm_build.document import Document
from imcm_build.pipeline import read_documents, run_steps
from imcm_build.report import BuildError, StepReport


def doc(doc_id: str, text: str = "文本") -> Document:
    return Document(id=doc_id, title="t", summary=text, author_intro="", tags=["a"], text=text)


class DropOdd:
    name = "drop_odd"

    def run(self, docs: list[Document], report: StepReport) -> list[Document]:
        kept = []
        for d in docs:
            if int(d.id) % 2:
                report.drop("odd_id", d.id)
            else:
                kept.append(d)
        return kept


class LoseSilently:
    name = "lossy"

    def run(self, docs: list[Document], report: StepReport) -> list[Document]:
        return docs[1:]


def test_steps_run_in_order_and_reports_account_for_every_document() -> None:
    result = run_steps([doc(str(i)) for i in range(5)], [DropOdd()])
    assert [d.id for d in result.documents] == ["0", "2", "4"]
    (report,) = result.reports
    assert (report.n_in, report.n_out, dict(report.dropped)) == (5, 3, {"odd_id": 2})
    assert report.examples["odd_id"] == ["1", "3"]


def test_a_step_that_loses_documents_without_a_reason_is_caught() -> None:
    with pytest.raises(BuildError, match="lost documents without a reason"):
        run_steps([doc("0"), doc("2")], [LoseSilently()])


def test_all_documents_dropped_is_a_clear_error_naming_the_step_and_reasons() -> None:
    with pytest.raises(BuildError, match=r"no documents left after step 'drop_odd' \(dropped: odd_id: 2\)"):
        run_steps([doc("1"), doc("3")], [DropOdd()])


def test_read_documents_counts_rejections_and_strict_aborts(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "1", "title": "t", "summary": "s", "tags": [], "url": "u"}\n{oops\n', encoding="utf-8")
    docs, report, rejections = read_documents([path])
    assert [d.id for d in docs] == ["1"] and report.n_in == 2 and dict(report.dropped) == {"malformed_json": 1}
    assert rejections[0].origin == f"{path}:2"
    with pytest.raises(BuildError, match=r"--strict: rejected record .*r.jsonl:2: malformed_json"):
        read_documents([path], strict=True)


def test_config_from_toml_with_overrides_and_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "build.toml"
    path.write_text('[build]\nnum_labels = 10\nsplit_ratios = [0.7, 0.15, 0.15]\nseed = 3\n', encoding="utf-8")
    config = BuildConfig.from_toml(path, seed=7)
    assert (config.num_labels, config.split_ratios, config.seed) == (10, (0.7, 0.15, 0.15), 7)
    config.validate()
    path.write_text("num_lables = 10\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown build option.*num_lables"):
        BuildConfig.from_toml(path)
    with pytest.raises(ValueError, match="sum to 1"):
        BuildConfig(split_ratios=(0.8, 0.1, 0.2)).validate()


def test_read_rejection_details_reach_the_report(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    good = '{"id": "1", "title": "t", "summary": "s", "tags": [], "url": "u"}'
    wrong_title = '{"id": "2", "title": 5, "summary": "s", "tags": [], "url": "u"}'
    path.write_text(f"{good}\n{good}\n{wrong_title}\n", encoding="utf-8")
    _, report, _ = read_documents([path])
    assert report.to_dict()["drop_examples"] == {
        "duplicate_id": [f"{path}:2: id '1' already read at {path}:1"],
        "wrong_type": [f"{path}:3: field 'title' must be a string, got int"],
    }


def test_nothing_read_blames_reading_and_names_the_reasons(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "1", "title": "t"}\n{oops\n', encoding="utf-8")
    with pytest.raises(BuildError, match=rf"no records read: all 2 line\(s\) of {path} were rejected") as caught:
        read_documents([path])
    assert f"missing_field: 1 (e.g. {path}:1: field 'summary' is missing)" in str(caught.value)
    assert f"malformed_json: 1 (e.g. {path}:2: Expecting property name" in str(caught.value)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(BuildError, match=rf"no records read: the records file\(s\) are empty \({empty}\)"):
        read_documents([empty])
