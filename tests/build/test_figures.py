from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import matplotlib
import pytest
from matplotlib import font_manager
from PIL import Image

from imcm_build import figures, release, stats
from tests.conftest import shared_path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEJAVU = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
TAGS = ["小说", "历史", "日本", "社会学", "中国", "科幻", "经典", "美国", "哲学", "心理学"]


def _corpus_stats(tag_lists: list[list[str]], lengths: list[int], names: list[str]) -> dict:
    index = {name: i for i, name in enumerate(names)}
    split_of = ["train"] * 8 + ["validation", "test"]
    label_lists: dict[str, list[list[int]]] = {split: [] for split in release.SPLITS}
    split_lengths: dict[str, list[int]] = {split: [] for split in release.SPLITS}
    for position, (tags, length) in enumerate(zip(tag_lists, lengths, strict=True)):
        split = split_of[position % 10]
        label_lists[split].append([index[tag] for tag in tags if tag in index])
        split_lengths[split].append(length)
    return stats.split_stats(label_lists, split_lengths, names)


@pytest.fixture
def small_stats() -> dict:
    """40 books whose tags follow a long tail: tag k is on every (k+1)-th book."""
    tag_lists = [[tag for k, tag in enumerate(TAGS) if book % (k + 1) == 0] for book in range(40)]
    return _corpus_stats(tag_lists, [50 + book for book in range(40)], TAGS)


def _description(path: Path) -> str:
    with Image.open(path) as image:
        return image.text.get("Description", "")


def _assert_valid_png(path: Path) -> None:
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    with Image.open(path) as image:
        image.verify()
        assert image.format == "PNG"


def test_writes_both_figures_as_valid_png(tmp_path: Path, small_stats: dict) -> None:
    written = figures.write_figures(small_stats, TAGS, tmp_path)
    assert written == [
        tmp_path / release.LABEL_FREQUENCY_FIGURE,
        tmp_path / release.LABELS_PER_DOCUMENT_FIGURE,
    ]
    for path in written:
        _assert_valid_png(path)
    with Image.open(written[0]) as image:
        assert "Software" not in image.text


def test_falls_back_to_label_ids_without_a_cjk_font(
    tmp_path: Path, small_stats: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(figures, "find_cjk_font", lambda: None)
    frequency_figure, _ = figures.write_figures(small_stats, TAGS, tmp_path)
    assert _description(frequency_figure) == figures.NO_CJK_FONT_NOTE


@pytest.mark.filterwarnings("ignore:Glyph")  # DejaVu has no CJK glyphs; only the code path is tested
def test_draws_label_names_with_a_cjk_font_when_one_is_found(
    tmp_path: Path, small_stats: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(figures, "find_cjk_font", lambda: DEJAVU)
    frequency_figure, _ = figures.write_figures(small_stats, TAGS, tmp_path)
    assert _description(frequency_figure) == "label names drawn with DejaVuSans.ttf"
    _assert_valid_png(frequency_figure)


def test_font_finder_prefers_a_known_cjk_family(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = list(font_manager.fontManager.ttflist)
    fake = font_manager.FontEntry(fname="/fonts/wqy-zenhei.ttc", name="WenQuanYi Zen Hei")
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [*installed, fake])
    assert figures.find_cjk_font() == Path("/fonts/wqy-zenhei.ttc")
    monkeypatch.setattr(
        font_manager.fontManager, "ttflist", [e for e in installed if e.name == "DejaVu Sans"]
    )
    monkeypatch.setattr(font_manager, "findSystemFonts", lambda *args, **kwargs: [])
    assert figures.find_cjk_font() is None


def test_font_finder_sees_a_font_installed_after_matplotlibs_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    dejavu = [e for e in font_manager.fontManager.ttflist if e.name == "DejaVu Sans"]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", dejavu)
    system_fonts = {"/usr/share/fonts/new/wqy-microhei.ttc": "WenQuanYi Micro Hei", dejavu[0].fname: "DejaVu Sans"}
    monkeypatch.setattr(font_manager, "findSystemFonts", lambda *args, **kwargs: list(system_fonts))

    class Properties:
        def __init__(self, fname: str) -> None:
            self.fname = fname

        def get_name(self) -> str:
            return system_fonts[self.fname]

    monkeypatch.setattr(font_manager, "FontProperties", Properties)
    assert figures.find_cjk_font() == Path("/usr/share/fonts/new/wqy-microhei.ttc")


def test_output_is_byte_stable(tmp_path: Path, small_stats: dict) -> None:
    first = figures.write_figures(small_stats, TAGS, tmp_path / "a")
    second = figures.write_figures(small_stats, TAGS, tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_label_names_must_match_the_statistics(tmp_path: Path, small_stats: dict) -> None:
    with pytest.raises(ValueError, match="9 label names but the statistics describe 10 labels"):
        figures.write_figures(small_stats, TAGS[:-1], tmp_path)


def test_draws_the_158_most_frequent_real_douban_user_tags(tmp_path: Path) -> None:
    path = shared_path("douban-public/records-usertags.jsonl")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    counts = Counter(tag for record in records for tag in record["tags"])
    names = [tag for tag, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:158]]
    corpus = _corpus_stats([r["tags"] for r in records], [len(r["summary"]) for r in records], names)
    for path in figures.write_figures(corpus, names, tmp_path):
        _assert_valid_png(path)
    with Image.open(tmp_path / release.LABEL_FREQUENCY_FIGURE) as image:
        assert image.width > 2000  # one bar per label needs a wide figure
