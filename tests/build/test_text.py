import json
import unicodedata
from itertools import islice

from hypothesis import given
from hypothesis import strategies as st

from imcm_build.text import clean_field, clean_title, count_words, count_words_joined, is_word, tokenize
from tests.conftest import shared_path


def test_a_word_is_a_token_with_a_letter_or_digit_in_any_script() -> None:
    for code_point in list(range(0x20, 0x3400)) + list(range(0x4E00, 0x4F00)) + list(range(0xFF00, 0xFFF0)):
        char = chr(code_point)
        assert is_word(char) == (unicodedata.category(char)[0] in "LN"), hex(code_point)


def test_tokenize_drops_whitespace_and_counts_only_words() -> None:
    tokens = tokenize("《三体》是刘慈欣的科幻小说， 2008 年出版。\n\n  它讲述了  人类文明与三体文明的故事！")
    assert "三体" in tokens and "刘慈欣" in tokens and "2008" in tokens
    assert all(token.strip() == token and token for token in tokens)
    punctuation = [t for t in tokens if not is_word(t)]
    assert set(punctuation) <= {"《", "》", "，", "。", "！"} and punctuation
    assert count_words(tokens) == len(tokens) - len(punctuation)
    assert " ".join(tokens).split() == tokens


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Zs", "Zl", "Zp", "Cc")), min_size=1)))
def test_counting_words_in_joined_tokens_equals_counting_the_list(tokens: list[str]) -> None:
    assert count_words_joined(" ".join(tokens)) == count_words(tokens) == sum(map(is_word, tokens))


def test_counting_words_in_joined_tokens_on_real_text() -> None:
    tokens = tokenize("《三体》是刘慈欣创作的系列长篇科幻小说，2006年5月起连载于《科幻世界》…… Hello, world! ——（完）")
    assert count_words_joined(" ".join(tokens)) == count_words(tokens) == sum(map(is_word, tokens)) > 10


LINE_BREAKS = ["\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def test_every_kind_of_line_break_separates_lines_and_never_glues_words() -> None:
    for line_break in LINE_BREAKS:
        assert clean_field(f"first line{line_break}second line").text == "first line\nsecond line", repr(line_break)
        assert clean_title(f"上册{line_break}下册") == "上册 下册", repr(line_break)


def test_real_summaries_clean_the_same_whatever_their_line_breaks() -> None:
    path = shared_path("douban-public/records.jsonl")
    with path.open(encoding="utf-8") as handle:
        summaries = [json.loads(line)["summary"] for line in islice(handle, 300)]
    with_sentences = [summary for summary in summaries if summary.count("。") >= 2]
    assert len(with_sentences) > 100
    for summary in with_sentences:
        expected = clean_field(summary.replace("。", "。\n"))
        assert expected.text.count("\n") >= 1
        for line_break in LINE_BREAKS:
            assert clean_field(summary.replace("。", "。" + line_break)) == expected, repr(line_break)
