from __future__ import annotations

import json
import re

import pytest

from imcm_build.document import Document
from imcm_build.pipeline import read_documents, run_steps
from imcm_build.records import parse_record
from imcm_build.report import StepReport
from imcm_build.steps.clean import Clean, clean_field, clean_title, normalize_unicode
from tests.conftest import shared_path


def make_doc(summary: str, author_intro: str = "", title: str = "书名", doc_id: str = "1") -> Document:
    return Document(id=doc_id, title=title, summary=summary, author_intro=author_intro, tags=["小说"])


def clean_one(doc: Document, **options: bool) -> tuple[list[Document], StepReport]:
    report = StepReport("clean")
    return Clean(**options).run([doc], report), report


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("他说&#147;你好&#148;。", "他说“你好”。"),  # cp1252 range numeric entities, as on Douban
        ("他说&amp;#147;你好&amp;#148;。", "他说“你好”。"),  # double escaped
        ("C&#39;s rich set &amp; more", "C's rich set & more"),
        ("第一段<br>第二段<br/>第三段<BR />", "第一段\n第二段\n第三段"),
        ('<p class="intro">正文</p><p>下一段</p>', "正文\n下一段"),
        ("a < b 而且 c > d", "a < b 而且 c > d"),
        ("又名<十个小黑人><孤岛十命>等", "又名<十个小黑人><孤岛十命>等"),
        ("利率<债券>市场", "利率<债券>市场"),
        ("&lt;br&gt;转义的标签", "转义的标签"),
        ("<b>粗体</b>不换行", "粗体不换行"),
    ],
)
def test_entities_and_tags(raw: str, expected: str) -> None:
    assert clean_field(raw).text == expected


def test_unicode_normalization_keeps_full_width_cjk_punctuation_but_folds_the_rest() -> None:
    assert normalize_unicode("你好，世界：是吗？（对）！；～") == "你好，世界：是吗？（对）！；～"
    assert normalize_unicode("省略…号") == "省略…号"
    assert normalize_unicode("ＡＢＣ１２３") == "ABC123"
    assert normalize_unicode("⼀本书") == "一本书"  # Kangxi radical → the ideograph
    assert normalize_unicode("ｶﾀｶﾅ") == "カタカナ"
    assert normalize_unicode("Ⅲ") == "III"


def test_whitespace_is_collapsed_and_paragraphs_kept_as_single_newlines() -> None:
    raw = "  第一段\u3000\u3000有  空格\t和制表符 \r\n\r\n\n\u3000\u3000第二段 \n  "
    assert clean_field(raw).text == "第一段 有 空格 和制表符\n第二段"


def test_invisible_characters_are_removed() -> None:
    assert clean_field("零\u200b宽\ufeff字符\uf06c\x07").text == "零宽字符"


@pytest.mark.parametrize("residue", ["(展开全部)", "（展开全部）", "展开全部", "( 展开全部 )"])
def test_douban_expand_residue_is_removed(residue: str) -> None:
    assert clean_field(f"这是简介的开头{residue}").text == "这是简介的开头"


@pytest.mark.parametrize("mark", ["...", "…", "……", "......", " ..."])
def test_trailing_truncation_mark_is_removed_and_recorded(mark: str) -> None:
    docs, report = clean_one(make_doc(f"被截断的简介{mark}"))
    assert docs[0].text == "被截断的简介"
    assert docs[0].meta["truncated"] is True
    assert report.notes["truncated_documents"] == 1


def test_ellipsis_inside_the_text_is_not_truncation() -> None:
    docs, report = clean_one(make_doc("他说……然后走了。"))
    assert docs[0].text == "他说……然后走了。"
    assert "truncated" not in docs[0].meta
    assert report.notes["truncated_documents"] == 0


def test_expand_residue_after_truncation_mark() -> None:
    field = clean_field("简介写到这里...(展开全部)")
    assert (field.text, field.truncated) == ("简介写到这里", True)


def test_summary_and_author_intro_are_joined_by_a_blank_line() -> None:
    docs, report = clean_one(make_doc("内容简介。<br>第二段。", author_intro="作者简介。"))
    assert docs[0].text == "内容简介。\n第二段。\n\n作者简介。"
    assert report.notes["documents_with_author_intro"] == 1
    docs, _ = clean_one(make_doc("只有简介。", author_intro=" \n "))
    assert docs[0].text == "只有简介。"


def test_title_is_cleaned() -> None:
    assert clean_title("名侦探柯南     4") == "名侦探柯南 4"
    assert clean_title("Tom &amp; Jerry\n上册") == "Tom & Jerry 上册"


def test_traditional_to_simplified_is_optional_and_applies_to_title_and_text() -> None:
    raw = make_doc("三毛作品中最膾炙人口的散文", title="撒哈拉的故事（繁體）")
    docs, _ = clean_one(raw)
    assert docs[0].text == "三毛作品中最膾炙人口的散文"
    docs, report = clean_one(
        make_doc("三毛作品中最膾炙人口的散文", title="撒哈拉的故事（繁體）"), to_simplified=True
    )
    assert docs[0].text == "三毛作品中最脍炙人口的散文"
    assert docs[0].title == "撒哈拉的故事（繁体）"
    assert report.notes["documents_changed_by_simplification"] == 1


def test_empty_text_is_dropped_with_a_reason() -> None:
    docs, report = clean_one(make_doc("<CENTER>", doc_id="42"))
    assert docs == []
    assert dict(report.dropped) == {"empty_text": 1}
    assert report.examples["empty_text"] == ["42"]
    docs, report = clean_one(make_doc("……"))
    assert docs == [] and report.dropped["empty_text"] == 1


def real_records() -> dict[str, Document]:
    path = shared_path("douban-public/records.jsonl")
    with path.open(encoding="utf-8") as handle:
        docs = [
            Document.from_record(parse_record(json.loads(line), f"{path}:{n}"))
            for n, line in enumerate(handle, 1)
        ]
    return {doc.id: doc for doc in docs}


def test_real_messy_records() -> None:
    docs = real_records()
    chosen = [docs[doc_id] for doc_id in ("1014278", "1236999", "1089991", "1824870", "1791250", "1084202")]
    raw = {doc.id: (doc.summary, doc.title) for doc in chosen}
    report = StepReport("clean")
    kept = {doc.id: doc for doc in Clean().run(chosen, report)}

    assert "&#34;" in raw["1014278"][0] and '白的还是"床前明月光"；' in kept["1014278"].text
    assert "&#39;" in raw["1236999"][0] and "C's rich set of operators" in kept["1236999"].text
    assert "利率<债券>市场" in kept["1089991"].text  # a Chinese word in angle brackets is not a tag
    assert "<br/>" in raw["1824870"][0] and "<br" not in kept["1824870"].text
    assert "巨作！\n亚洲魔幻" in kept["1824870"].text  # <br/>　　 became one paragraph break
    assert kept["1084202"].title == "约翰·克利斯朵夫 (全四卷)"
    assert raw["1791250"][0] == "<CENTER>" and "1791250" not in kept
    assert dict(report.dropped) == {"empty_text": 1}


def test_real_records_report_counts_match_the_data_card() -> None:
    path = shared_path("douban-public/records.jsonl")
    stats = json.loads(shared_path("douban-public/stats.json").read_text(encoding="utf-8"))["records"]
    docs, _, rejections = read_documents([path])
    result = run_steps(docs, [Clean()])
    (report,) = result.reports
    assert rejections == []
    assert (report.n_in, report.n_out, dict(report.dropped)) == (
        stats["records"],
        stats["records"] - 1,
        {"empty_text": 1},
    )
    # The data card counts summaries ending in "..." or "…" independently of this code.
    assert report.notes["truncated_documents"] == stats["summaries_ending_ellipsis"]
    assert (
        sum(doc.meta.get("truncated", False) for doc in result.documents)
        == stats["summaries_ending_ellipsis"]
    )
    for doc in result.documents:
        assert doc.text == doc.text.strip() and "\n\n" not in doc.text and "  " not in doc.text, doc.id
        assert not doc.text.endswith("..."), doc.id
        if doc.text.endswith("…"):  # only the page's mark goes: "故事……..." keeps the author's "……"
            assert re.search(r"…\.{3}$", doc.summary), doc.id
        assert "&#" not in doc.text and "<br" not in doc.text.lower(), doc.id
