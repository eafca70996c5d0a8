import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from imcm_build.text import count_words, count_words_joined, is_word, tokenize


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
