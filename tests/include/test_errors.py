"""How error messages quote values: short ones whole, long ones cut with their length said."""

from include.errors import QUOTE_LIMIT, quoted


def test_a_short_value_is_quoted_whole():
    assert quoted("resnet") == "'resnet'"
    assert quoted(None) == "None"


def test_a_long_value_is_cut_and_says_how_long_it_was():
    value = "x" * 10_000
    text = quoted(value)
    assert text == f"'{'x' * (QUOTE_LIMIT - 1)}... (10002 characters)"
    assert len(text) < QUOTE_LIMIT + 30


def test_the_limit_is_a_parameter():
    assert quoted(list(range(100)), limit=10) == "[0, 1, 2, ... (390 characters)"
