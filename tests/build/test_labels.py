from __future__ import annotations

import copy
import json

import pytest

from imcm_build.document import Document
from imcm_build.pipeline import read_documents, run_steps
from imcm_build.report import StepReport
from imcm_build.steps import Clean, Deduplicate, LengthFilter, Split, Tokenize
from imcm_build.steps.labels import LabelOutlook, Labels, normalize_tag
from tests.conftest import shared_path


def make_doc(doc_id: str, tags: list[str]) -> Document:
    return Document(id=doc_id, title="", summary="", author_intro="", tags=tags)


def run_labels(docs: list[Document], **options: int) -> tuple[Labels, list[Document], StepReport]:
    step = Labels(**options)
    report = StepReport("labels")
    kept = step.run(docs, report)
    return step, kept, report


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Python", "python"),
        ("ｐｙｔｈｏｎ", "python"),  # full-width letters
        ("  科幻  ", "科幻"),
        ("Science  Fiction", "science fiction"),
        ("日本\u3000文学", "日本 文学"),  # ideographic space
        ("Ｃ＋＋", "c++"),
        ("\u3000 ", ""),
    ],
)
def test_tag_normalization(raw: str, normalized: str) -> None:
    assert normalize_tag(raw) == normalized


def test_labels_are_ordered_by_frequency_then_name_and_cut_at_num_labels() -> None:
    docs = [
        make_doc("1", ["科幻", "小说", "b"]),
        make_doc("2", ["小说", "科幻", "a"]),
        make_doc("3", ["小说", "Python", "python"]),  # same tag twice in one document counts once
        make_doc("4", ["ＰＹＴＨＯＮ", "a"]),
        make_doc("5", ["b", "c"]),
        make_doc("6", ["c"]),
    ]
    step, kept, report = run_labels(docs, num_labels=4)
    # frequencies: 小说 3, a 2, b 2, c 2, python 2, 科幻 2: ties by code point ("a" < "b" < "c" < "python" < "科幻")
    assert step.label_names_ == ["小说", "a", "b", "c"]
    assert report.notes["label_names"] == step.label_names_
    assert report.notes["label_frequencies"] == [3, 2, 2, 2]
    assert report.notes["cutoff_frequency"] == 2
    assert report.notes["tags_cut_by_name_tie_break"] == ["python", "科幻"]
    assert [doc.labels for doc in kept] == [["小说", "b"], ["小说", "a"], ["小说"], ["a"], ["b", "c"], ["c"]]
    assert (report.notes["tags_seen"], report.notes["tags_kept"]) == (6, 4)
    assert (report.notes["raw_tag_assignments"], report.notes["tag_assignments"]) == (
        14,
        13,
    )  # doc 3: python ×2
    assert report.notes["label_assignments"] == 9
    assert report.notes["fraction_of_assignments_kept"] == round(9 / 13, 6)


def test_documents_left_without_labels_are_dropped() -> None:
    docs = [make_doc("1", ["小说"]), make_doc("2", ["小说"]), make_doc("3", ["冷门"]), make_doc("4", [])]
    step, kept, report = run_labels(docs, num_labels=1)
    assert [doc.id for doc in kept] == ["1", "2"]
    assert dict(report.dropped) == {"no_label": 2} and report.examples["no_label"] == ["3", "4"]


def test_min_label_freq_and_fewer_tags_than_requested() -> None:
    docs = [make_doc("1", ["小说", "历史"]), make_doc("2", ["小说"]), make_doc("3", ["历史", "诗歌"])]
    step, kept, report = run_labels(docs, num_labels=158, min_label_freq=2)
    assert step.label_names_ == ["历史", "小说"]
    assert [doc.labels for doc in kept] == [["历史", "小说"], ["小说"], ["历史"]]
    assert "only 2 tags" in report.notes["fewer_labels_than_requested"]


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError, match="num_labels"):
        Labels(num_labels=0)


def test_real_records_top_158_match_the_data_card() -> None:
    """The shared data's stats.json was computed independently: top-158 by document frequency, ties by
    code point; rank 158 has frequency 88, rank 159 has 87, and 1,990 records are left with no tag."""
    stats = json.loads(shared_path("douban-public/stats.json").read_text(encoding="utf-8"))
    docs, _, _ = read_documents([shared_path("douban-public/records.jsonl")])
    result = run_steps(docs, [Labels(num_labels=158)])
    (report,) = result.reports
    table = stats["table1_records_top158"]
    assert dict(report.dropped) == {"no_label": table["dropped_no_tag_left"]}
    assert report.n_out == stats["records"]["records"] - table["dropped_no_tag_left"]
    assert report.notes["tags_seen"] == stats["records"]["distinct_tags"]
    assert report.notes["label_frequencies"][-1] == table["freq_at_rank_158"]
    assert report.notes["cutoff_frequency"] == table["freq_at_rank_158"]
    top = stats["records"]["top_tags"]
    assert list(zip(report.notes["label_names"], report.notes["label_frequencies"], strict=True))[
        : len(top)
    ] == [tuple(t) for t in top]
    labels = set(report.notes["label_names"])
    assert all(doc.labels and set(doc.labels) <= labels for doc in result.documents)


def test_label_outlook_rules_out_only_tags_that_cannot_reach_the_top() -> None:
    outlook = LabelOutlook(num_labels=2, min_label_freq=2, min_words=50)
    tag_lists = [["a", "b"], ["a"], ["a", "c"], ["b"], ["c", "d"], ["d"], ["e"], ["b", "e"]]
    # frequencies a 3, b 3, c 2, d 2, e 2: the two most frequent are a and b
    assert outlook.likely(tag_lists) == [True, True, True, True, False, False, False, True]
    words = [60, 60, 10, 60, None, None, None, 60]  # long documents known so far: a 2, b 3, e 1
    # the 2nd largest lower bound is 2: c, d, e (at most 2) could still tie a, so all stay possible
    assert outlook.possible(tag_lists, words) == {"a", "b", "c", "d", "e"}
    words = [60, 60, 60, 60, None, None, None, 60]  # a 3, b 3 known: c, d, e (at most 2) cannot reach 3
    assert outlook.possible(tag_lists, words) == {"a", "b"}
    assert LabelOutlook(2, 4, 50).possible(tag_lists, [None] * 8) == set()  # below min_label_freq


def test_not_tokenizing_documents_without_a_possible_label_changes_nothing_published() -> None:
    docs = read_documents([shared_path("douban-public/records.jsonl")])[0][:4000]

    def build(tokenize: Tokenize) -> tuple[list[tuple], StepReport]:
        steps = [Clean(), Deduplicate(), tokenize, LengthFilter(50), Labels(num_labels=158), Split()]
        result = run_steps(copy.deepcopy(docs), steps, workers=2)
        published = [(doc.id, doc.tokens, doc.labels, doc.split) for doc in result.documents]
        return published, result.reports[2]

    everything, _ = build(Tokenize())
    pruned, report = build(Tokenize(outlook=LabelOutlook(158, 1, 50)))
    assert report.dropped["no_possible_label"] > 100  # the shortcut is taken on real data ...
    assert pruned == everything  # ... and the release is the same
