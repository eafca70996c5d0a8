from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import yaml

from imcm_build import figures, publish, release, stats
from imcm_build.document import Document
from imcm_build.text import count_words, tokenize

BOOKS = [
    (
        "1008145",
        "围城",
        "《围城》是钱钟书所著的长篇小说，讲述方鸿渐留学归国后的婚恋与职场经历。",
        ["小说", "钱钟书", "中国文学"],
    ),
    (
        "1007305",
        "红楼梦",
        "《红楼梦》以贾、史、王、薛四大家族的兴衰为背景，描写贾宝玉与林黛玉的爱情悲剧。",
        ["小说", "古典文学", "中国文学"],
    ),
    (
        "1084336",
        "小王子",
        "小王子离开自己的星球，在旅途中遇见国王、酒鬼和狐狸，懂得了爱与责任。",
        ["童话", "小说"],
    ),
    (
        "1046265",
        "挪威的森林",
        "村上春树的青春小说，渡边在直子与绿子之间徘徊，回望六十年代的东京。",
        ["小说", "日本文学"],
    ),
    (
        "2567698",
        "三体",
        "文化大革命中，叶文洁向宇宙发出信号；数十年后，人类文明面临三体舰队的威胁。",
        ["科幻", "小说"],
    ),
    (
        "1770782",
        "追风筝的人",
        "阿米尔与哈桑是童年好友，一次背叛改变了两人的命运，多年后他回到喀布尔赎罪。",
        ["小说"],
    ),
    (
        "4913064",
        "活着",
        "福贵从富家少爷沦为贫农，亲人一个个离去，他依然与老牛一起活着。",
        ["小说", "中国文学"],
    ),
    (
        "1200840",
        "平凡的世界",
        "孙少安和孙少平兄弟在黄土高原上奋斗，书写七十年代到八十年代农村的变迁。",
        ["小说", "中国文学"],
    ),
    ("1041007", "万历十五年", "黄仁宇从万历十五年这一平淡的年份入手，分析明代社会的结构性问题。", ["历史"]),
    (
        "3259440",
        "白夜行",
        "东野圭吾的推理小说：一桩悬而未决的命案，牵出唐泽雪穗与桐原亮司十九年的纠缠。",
        ["推理", "小说", "日本文学"],
    ),
    ("1082154", "人类简史", "赫拉利讲述智人如何凭借认知革命、农业革命和科学革命成为地球的主宰。", ["历史"]),
    ("6082808", "百年孤独", "布恩迪亚家族七代人的传奇，马孔多小镇从建立到消亡的魔幻现实主义史诗。", ["小说"]),
]
LABELS = ["小说", "中国文学", "历史", "日本文学", "钱钟书", "古典文学", "童话", "科幻", "推理"]
SPLIT_OF = ["train"] * 8 + ["validation"] * 2 + ["test"] * 2
REPORT = {
    "name": "imcm",
    "steps": [
        {"step": "read", "in": 14, "out": 12, "dropped": {"malformed_json": 1, "duplicate_id": 1}},
        {"step": "length", "in": 12, "out": 12, "dropped": {}},
    ],
}
CONFIG = {"seed": 42, "min_words": 5}


def make_documents() -> list[Document]:
    docs = []
    for position, (book_id, title, summary, tags) in enumerate(BOOKS):
        tokens = tokenize(summary)
        docs.append(
            Document(
                id=book_id,
                title=title,
                summary=summary,
                author_intro="",
                tags=tags,
                origin=f"records.jsonl:{position + 1}",
                text=summary,
                tokens=tokens,
                n_words=count_words(tokens),
                labels=list(tags),
                split=SPLIT_OF[position],
            )
        )
    return docs


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


@pytest.fixture(scope="module")
def documents() -> list[Document]:
    return make_documents()


@pytest.fixture
def published(tmp_path: Path, documents: list[Document]) -> Path:
    return publish.publish_release(documents, LABELS, tmp_path / "release", dict(REPORT), CONFIG)


def _leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith((".tmp-", ".old-")))


def test_release_has_every_file_and_valid_checksums(published: Path) -> None:
    files = sorted(p.relative_to(published).as_posix() for p in published.rglob("*") if p.is_file())
    expected = [release.CARD_FILE, release.CHECKSUMS_FILE, release.REPORT_FILE, release.LABELS_FILE,
                release.STATS_FILE, release.LABEL_FREQUENCY_FIGURE, release.LABELS_PER_DOCUMENT_FIGURE,
                *(release.parquet_path(split) for split in release.SPLITS)]  # fmt: skip
    assert files == sorted(expected)
    assert release.read_label_names(published) == LABELS
    listed = [
        line.split("  ", 1)[1] for line in (published / release.CHECKSUMS_FILE).read_text().splitlines()
    ]
    assert listed == sorted(set(expected) - {release.CHECKSUMS_FILE})
    assert publish.verify_checksums(published) == []
    if shutil.which("sha256sum"):
        check = subprocess.run(["sha256sum", "-c", "--strict", release.CHECKSUMS_FILE], cwd=published)
        assert check.returncode == 0
    assert _leftovers(published.parent) == []


def test_load_dataset_gives_three_splits_with_the_declared_features(published: Path) -> None:
    loaded = datasets.load_dataset(str(published))
    assert list(loaded) == list(release.SPLITS)
    assert [loaded[split].num_rows for split in release.SPLITS] == [8, 2, 2]
    assert loaded["train"].features == release.release_features(LABELS)
    class_label = loaded["train"].features["labels"].feature
    for split in release.SPLITS:
        rows = loaded[split]
        books = [book for book, book_split in zip(BOOKS, SPLIT_OF, strict=True) if book_split == split]
        assert rows["id"] == [book[0] for book in books]
        assert [class_label.int2str(ids) for ids in rows["labels"]] == [book[3] for book in books]
        assert [tokens.split() for tokens in rows["tokens"]] == [tokenize(book[2]) for book in books]


def test_parquet_and_checksums_are_identical_across_runs(tmp_path: Path, published: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from tests.build.test_publish import *\n"
        "publish.publish_release(make_documents(), LABELS, Path(sys.argv[1]), dict(REPORT), CONFIG)\n"
    )
    other = tmp_path / "other-run"
    subprocess.run([sys.executable, "-c", script, str(other)], check=True, cwd=Path(__file__).parents[2])
    for split in release.SPLITS:
        path = release.parquet_path(split)
        assert (other / path).read_bytes() == (published / path).read_bytes()
    assert (other / release.CHECKSUMS_FILE).read_text() == (published / release.CHECKSUMS_FILE).read_text()


def test_stats_describe_what_was_published(published: Path, documents: list[Document]) -> None:
    written = stats.read_stats(published / release.STATS_FILE)
    assert written == stats.release_stats(published)
    whole = written["sets"]["all"]
    assert whole["instances"] == len(BOOKS)
    assert whole["cardinality"] == pytest.approx(sum(len(b[3]) for b in BOOKS) / len(BOOKS))
    assert whole["mean_length_words"] == pytest.approx(sum(d.n_words for d in documents) / len(documents))
    assert [label["frequency"]["all"] for label in written["labels"]][:3] == [10, 4, 2]


def _card(published: Path) -> tuple[dict, str]:
    _, header, body = (published / release.CARD_FILE).read_text(encoding="utf-8").split("---\n", 2)
    return yaml.safe_load(header), body


def test_card_header_is_written_by_datasets(published: Path) -> None:
    header, _ = _card(published)
    assert header["language"] == ["zh"]
    assert header["task_ids"] == ["multi-label-classification"]
    names = header["dataset_info"]["features"][4]["list"]["class_label"]["names"]
    assert names == {str(i): name for i, name in enumerate(LABELS)}
    assert [s["num_examples"] for s in header["dataset_info"]["splits"]] == [8, 2, 2]
    data_files = header["configs"][0]["data_files"]
    assert data_files == [{"split": s, "path": release.parquet_path(s)} for s in release.SPLITS]


def test_card_body_shows_the_published_numbers(published: Path) -> None:
    _, body = _card(published)
    assert stats.format_table1(stats.read_stats(published / release.STATS_FILE)) in body
    assert (
        f"]({release.LABEL_FREQUENCY_FIGURE})" in body and f"]({release.LABELS_PER_DOCUMENT_FIGURE})" in body
    )
    assert "| read | 14 | 12 | duplicate_id: 1, malformed_json: 1 |" in body
    assert "| 0 | 小说 | 10 | 8 | 1 | 1 | 1.00 |" in body
    assert all(f"| {name} |" in body for name in LABELS)
    assert "© Douban and its users" in body and "@misc{imcm" in body
    assert "$" not in body  # every template field was filled


def test_build_report_adds_config_and_versions_without_changing_the_input(published: Path) -> None:
    report = json.loads((published / release.REPORT_FILE).read_text(encoding="utf-8"))
    assert report["steps"] == REPORT["steps"]
    assert report["config"] == CONFIG
    assert {"python", "datasets", "pyarrow", "jieba", "scikit-learn"} <= set(report["versions"])
    assert "versions" not in REPORT and "config" not in REPORT


def test_failure_mid_publish_leaves_no_release_and_no_temp_folder(
    tmp_path: Path, documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(figures, "write_figures", crash)
    with pytest.raises(KeyboardInterrupt):
        publish.publish_release(documents, LABELS, tmp_path / "release", REPORT, CONFIG)
    assert not (tmp_path / "release").exists()
    assert _leftovers(tmp_path) == []


def test_failure_mid_publish_keeps_the_previous_release(
    published: Path, documents: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = (published / release.CHECKSUMS_FILE).read_text()

    def crash(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(publish.stats, "write_stats", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        publish.publish_release(documents, LABELS, published, REPORT, CONFIG)
    assert (published / release.CHECKSUMS_FILE).read_text() == before
    assert publish.verify_checksums(published) == []
    assert _leftovers(published.parent) == []


def test_republishing_replaces_the_old_release(published: Path, documents: list[Document]) -> None:
    fewer = [doc for doc in documents if doc.id != "1084336"]  # drop 小王子, the only 童话 book
    publish.publish_release(fewer, LABELS, published, REPORT, CONFIG, figures=False)
    assert release.read_split(published, "train").ids == [doc.id for doc in fewer if doc.split == "train"]
    assert not (published / release.FIGURES_DIR).exists()
    assert "Figures were not generated" in _card(published)[1]
    assert publish.verify_checksums(published) == []
    assert _leftovers(published.parent) == []


def test_refuses_to_replace_a_folder_that_is_not_a_release(tmp_path: Path, documents: list[Document]) -> None:
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("...")
    with pytest.raises(publish.PublishError, match="not a release; refusing to replace it"):
        publish.publish_release(documents, LABELS, precious, REPORT, CONFIG)
    assert (precious / "chapter1.tex").exists()


def test_verify_checksums_reports_changed_missing_and_unlisted_files(published: Path) -> None:
    (published / release.LABELS_FILE).write_text("changed\n", encoding="utf-8")
    (published / release.LABEL_FREQUENCY_FIGURE).unlink()
    (published / "notes.txt").write_text("extra", encoding="utf-8")
    problems = publish.verify_checksums(published)
    assert problems == [
        f"{published / release.LABEL_FREQUENCY_FIGURE}: listed in SHA256SUMS but missing",
        f"{published / release.LABELS_FILE}: checksum mismatch (changed since publishing)",
        f"{published / 'notes.txt'}: not listed in SHA256SUMS",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"labels": ["小说", "武侠"]},
            r"document '1008145' \(records.jsonl:1\): label\(s\) not in the label names: '武侠'",
        ),
        ({"split": "dev"}, r"document '1008145' \(records.jsonl:1\): split 'dev' is not one of"),
        ({"id": "1007305"}, r"document '1007305' \(records.jsonl:1\): id already used by document '1007305'"),
        ({"tokens": ["围 城"]}, r"token\(s\) empty or containing whitespace"),
    ],
)
def test_bad_documents_are_named(
    tmp_path: Path, documents: list[Document], change: dict, message: str
) -> None:
    first = Document(**{**documents[0].__dict__, **change})
    with pytest.raises(publish.PublishError, match=message):
        publish.publish_release([documents[1], first, *documents[2:]], LABELS, tmp_path / "r", REPORT, CONFIG)
    assert not (tmp_path / "r").exists()


def test_every_split_needs_documents(tmp_path: Path, documents: list[Document]) -> None:
    without_test = [doc for doc in documents if doc.split != "test"]
    with pytest.raises(publish.PublishError, match="split\\(s\\) test have no documents"):
        publish.publish_release(without_test, LABELS, tmp_path / "r", REPORT, CONFIG)
