from __future__ import annotations

import copy
import random
import time

import numpy as np

from imcm_build.document import Document
from imcm_build.report import StepReport
from imcm_build.steps.dedup import (
    TITLE_MATCH_MIN_JACCARD,
    Deduplicate,
    estimated_jaccard,
    lsh_bands,
    lsh_candidates,
    minhash_signature,
    normalized_key,
    shingle_hashes,
)
from tests.build.realdata import cleaned_real_docs

BASE = (
    "在朱克曼家的谷仓里，快乐地生活着一群动物，其中小猪威尔伯和蜘蛛夏洛建立了最真挚的友谊。"
    "然而，一个最丑恶的消息打破了谷仓的平静：威尔伯未来的命运竟是成为熏肉火腿。"
    "作为一只猪，悲痛绝望的威尔伯似乎只能接受任人宰割的命运了，然而，看似渺小的夏洛却说：“我救你。”"
    "于是，夏洛用自己的丝在猪栏上织出了被人类视为奇迹的网上文字，彻底逆转了威尔伯的命运。"
)
OTHER = (
    "《时间简史》讲述是探索时间和空间核心秘密的故事，是关于宇宙本性的最前沿知识，包括我们的宇宙图像、"
    "空间和时间、膨胀的宇宙、不确定性原理、基本粒子和自然的力、黑洞、黑洞不是这么黑、时间箭头等内容。"
)


def make_doc(doc_id: str, text: str, tags: list[str], title: str = "", **meta: str) -> Document:
    return Document(
        id=doc_id,
        title=title or f"书{doc_id}",
        summary=text,
        author_intro="",
        tags=list(tags),
        text=text,
        meta=dict(meta),
    )


def dedup(docs: list[Document], **options: float | bool) -> tuple[list[Document], StepReport]:
    report = StepReport("dedup")
    kept = Deduplicate(**options).run(docs, report)
    assert report.n_dropped == len(docs) - len(kept)
    return kept, report


def test_exact_duplicates_ignore_whitespace_punctuation_and_case_and_merge_tags() -> None:
    docs = [
        make_doc("30", "Hello 世界，这是一本书。", ["科普", "经典"]),
        make_doc("7", "hello世界 这是一本书", ["经典", "物理"]),
        make_doc("12", "HELLO 世界——这是一本书！！", ["宇宙", "科普"]),
        make_doc("5", OTHER, ["科学"]),
    ]
    kept, report = dedup(docs)
    # "12" has the longest text (its punctuation counts for length), so it is the keeper.
    assert [doc.id for doc in kept] == ["12", "5"]
    assert kept[0].tags == ["宇宙", "科普", "经典", "物理"]
    assert kept[0].meta["merged_ids"] == ["30", "7"]  # in keeper-rank order: longer text first
    assert dict(report.dropped) == {"exact_duplicate": 2}
    assert report.notes["exact_groups"] == 1


def test_keeper_tie_breaks_by_numeric_then_string_id() -> None:
    kept, _ = dedup([make_doc("10", BASE, ["a"]), make_doc("9", BASE, ["b"]), make_doc("x9", BASE, ["c"])])
    assert [doc.id for doc in kept] == ["9"] and kept[0].tags == ["b", "a", "c"]
    kept, _ = dedup([make_doc("b", BASE, ["a"]), make_doc("a", BASE, ["b"])])
    assert [doc.id for doc in kept] == ["a"]


def test_near_duplicate_edition_is_dropped_and_unrelated_text_kept() -> None:
    edited = BASE.replace("最丑恶的", "最丑陋的")  # one word changed: a reprint with a corrected blurb
    docs = [
        make_doc("1", BASE, ["童话"]),
        make_doc("2", edited, ["儿童文学"]),
        make_doc("3", OTHER, ["科普"]),
    ]
    kept, report = dedup(docs)
    assert [doc.id for doc in kept] == ["1", "3"]
    assert kept[0].tags == ["童话", "儿童文学"] and kept[0].meta["merged_ids"] == ["2"]
    assert dict(report.dropped) == {"near_duplicate": 1}
    kept, report = dedup(docs, near=False)
    assert len(kept) == 3 and report.n_dropped == 0


def test_same_title_needs_shared_text_or_the_same_author() -> None:
    rewritten = BASE[: len(BASE) // 2] + OTHER  # half the blurb rewritten: Jaccard well below 0.9
    unrelated = OTHER
    same_title_overlap = [
        make_doc("1", BASE, ["a"], title="夏洛的网"),
        make_doc("2", rewritten, ["b"], title="夏洛的网"),
    ]
    kept, report = dedup(same_title_overlap)
    assert [doc.id for doc in kept] == ["2"] and report.dropped["near_duplicate"] == 1  # "2" is longer
    kept, _ = dedup(same_title_overlap, near=True, threshold=0.99)
    assert len(kept) == 1  # found by the title rule, not by the text threshold
    different_books = [
        make_doc("1", BASE, ["a"], title="活着"),
        make_doc("2", unrelated, ["b"], title="活着"),
    ]
    kept, _ = dedup(different_books)
    assert len(kept) == 2
    same_author = [
        make_doc("1", BASE, ["a"], title="活着", author="余华"),
        make_doc("2", unrelated, ["b"], title="活着", author="余 华"),
    ]
    kept, _ = dedup(same_author)
    assert len(kept) == 1
    other_author = [
        make_doc("1", BASE, ["a"], title="夏洛的网", author="E.B.怀特"),
        make_doc("2", rewritten, ["b"], title="夏洛的网", author="别人"),
    ]
    kept, _ = dedup(other_author)
    assert len(kept) == 2
    assert TITLE_MATCH_MIN_JACCARD < 0.9


def test_result_does_not_depend_on_input_order() -> None:
    docs = [make_doc(str(i), BASE[i:] + OTHER[: i * 3], [f"t{i}", "共同"]) for i in range(12)]
    docs += [make_doc(str(100 + i), OTHER[i:], [f"u{i}"]) for i in range(6)]
    docs += [make_doc("200", BASE, ["copy"])]
    reference, reference_report = dedup(copy.deepcopy(docs))
    shuffled = copy.deepcopy(docs)
    random.Random(7).shuffle(shuffled)
    result, report = dedup(shuffled)
    summary = sorted((doc.id, doc.tags, doc.meta.get("merged_ids")) for doc in result)
    assert summary == sorted((doc.id, doc.tags, doc.meta.get("merged_ids")) for doc in reference)
    assert report.dropped == reference_report.dropped


def test_placeholder_texts_without_letters_are_only_exact_duplicates() -> None:
    kept, report = dedup([make_doc("1", "-", ["a"]), make_doc("2", "-", ["b"]), make_doc("3", ".", ["c"])])
    assert [doc.id for doc in kept] == ["1", "3"] and dict(report.dropped) == {"exact_duplicate": 1}


def test_five_copies_of_real_records_collapse_back_to_one_copy() -> None:
    sample = cleaned_real_docs(3000)
    once, once_report = dedup(copy.deepcopy(sample))
    copies = []
    for number in range(5):
        for doc in copy.deepcopy(sample):
            if number:
                doc.id = f"{doc.id}{number:02d}9"  # new, still numeric ids (as benchmarks/ does)
            copies.append(doc)
    started = time.perf_counter()
    collapsed, report = dedup(copies)
    seconds = time.perf_counter() - started
    assert sorted(doc.id for doc in collapsed) == sorted(doc.id for doc in once)
    assert report.dropped["exact_duplicate"] == once_report.dropped["exact_duplicate"] + 4 * len(sample)
    assert report.dropped["near_duplicate"] == once_report.dropped["near_duplicate"]
    merged = {doc.id: doc.meta.get("merged_ids", []) for doc in collapsed}
    first = sample[0].id
    assert [f"{first}{number:02d}9" for number in range(1, 5)] == merged[first][:4]
    assert seconds < 30, f"dedup of {len(copies)} documents took {seconds:.1f} s"


def test_real_editions_are_merged() -> None:
    docs = cleaned_real_docs(10_628)
    by_id = {doc.id: doc for doc in docs}
    # Two editions of 夏洛的网 whose blurbs differ in a few words (found in the shared records).
    assert by_id["2050768"].title == by_id["26278316"].title == "夏洛的网"
    dropped_tags = {doc_id: list(by_id[doc_id].tags) for doc_id in ("2050768", "26278316")}
    kept, report = dedup(docs)
    keeper_of = {doc.id: doc for doc in kept}
    keeper_of.update({merged: doc for doc in kept for merged in doc.meta.get("merged_ids", [])})
    keeper = keeper_of["2050768"]
    assert keeper is keeper_of["26278316"]
    for tags in dropped_tags.values():
        assert set(tags) <= set(keeper.tags)
    assert report.dropped["exact_duplicate"] > 0 and report.dropped["near_duplicate"] > 0
    assert len(kept) + report.n_dropped == len(docs)


def test_lsh_bands_find_pairs_at_the_threshold_with_the_fewest_candidates() -> None:
    def recall(threshold: float, bands: int, rows: int) -> float:
        return 1 - (1 - threshold**rows) ** bands

    for threshold in (0.5, 0.8, 0.9, 0.95):
        bands, rows = lsh_bands(threshold, 128)
        assert bands * rows <= 128 and recall(threshold, bands, rows) >= 0.999
        assert recall(threshold, 128 // (rows + 1), rows + 1) < 0.999  # one more row per band would miss pairs


def test_every_one_word_edit_whose_estimated_jaccard_reaches_the_threshold_is_merged() -> None:
    # one changed word in a ~150-character blurb: Jaccard of the shingles ~0.93, just above 0.9; with the
    # balanced banding (5 bands of 25 rows) about half of such pairs were never even compared
    words = ["最丑恶的", "渺小的", "真挚的", "悲痛绝望的", "平静", "命运", "谷仓"]
    replacements = ["最可怕的", "弱小的", "真诚的", "伤心的", "安宁", "结局", "农场", "羊圈", "小屋", "宿命"]
    edits = [BASE.replace(word, new, 1) for word in words for new in replacements if word in BASE]

    def estimate(first: str, second: str) -> float:
        return estimated_jaccard(minhash_signature(normalized_key(first)), minhash_signature(normalized_key(second)))

    reaching = 0
    for number, edited in enumerate(edits):
        kept, _ = dedup([make_doc("1", BASE, ["童话"]), make_doc(str(number + 2), edited, ["儿童文学"])])
        merged = len(kept) == 1
        assert merged == (estimate(BASE, edited) >= 0.9), edited
        reaching += merged
    assert reaching >= 30  # most edits reach the threshold: the check has pairs to find


def test_lsh_candidates_are_exactly_the_pairs_that_agree_on_a_whole_band() -> None:
    rng = np.random.default_rng(3)
    signatures = rng.integers(0, 4, size=(60, 12), dtype=np.uint32)  # few values: many agreeing bands
    signatures[7] = signatures[40]  # an identical pair
    bands, rows = 4, 3
    expected = {
        (i, j)
        for i in range(60)
        for j in range(i + 1, 60)
        if any((signatures[i, b * rows : (b + 1) * rows] == signatures[j, b * rows : (b + 1) * rows]).all()
               for b in range(bands))
    }
    found = {tuple(pair) for pair in lsh_candidates(signatures, bands, rows).tolist()}
    assert found == expected and (7, 40) in found


def test_minhash_estimates_the_jaccard_of_the_shingle_sets() -> None:
    docs = cleaned_real_docs(40)
    errors = []
    halved = make_doc("x", docs[0].text[: len(docs[0].text) // 2], [])
    for first, second in zip(docs, [*docs[1:], halved], strict=True):
        one, two = normalized_key(first.text), normalized_key(second.text)
        a, b = set(shingle_hashes(one).tolist()), set(shingle_hashes(two).tolist())
        errors.append(abs(len(a & b) / len(a | b) - estimated_jaccard(minhash_signature(one), minhash_signature(two))))
    assert max(errors) < 0.15 and sum(errors) / len(errors) < 0.03
    key = normalized_key(docs[0].text)
    assert (minhash_signature(key) == minhash_signature(key)).all() and minhash_signature(key).dtype == np.uint32
    assert estimated_jaccard(minhash_signature(key), minhash_signature(key[:40] + "改" + key[41:])) > 0.9
