"""Full-text search (whisper/store/query.py, History.search): words, never FTS5 syntax."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.store_helpers import record
from whisper.store import History
from whisper.store.query import MAX_WORDS, fts_query

BODIES = [
    "Hello world",
    "the café is open",
    "meet at NEAR the station",
    'she said "quote" and left',
    "foo-bar baz",
    "x AND y OR z",
    "col:value here",
    "日本語 テキスト",
    "hello again world",
]


OPERATORS = ['"', "NEAR", "(", ")", "*", "AND", "OR", "NOT", ":", "^", "-", "+", "{", "}", "hi"]


@pytest.fixture
def history(tmp_path):
    with History.open(tmp_path / "h") as h:
        h.add_messages([record(b, nick="nick" + str(i)) for i, b in enumerate(BODIES)])
        yield h


def bodies(found) -> list[str]:
    return [s.message.body for s in found]


def test_every_word_must_match_in_any_case_and_accent(history):
    assert bodies(history.search("world hello")) == ["hello again world", "Hello world"]
    assert bodies(history.search("CAFE")) == ["the café is open"]
    assert bodies(history.search("hello   world  again")) == ["hello again world"]
    assert history.search("hello nothere") == []


def test_nicks_are_searched_too(history):
    assert bodies(history.search("nick4")) == ["foo-bar baz"]


def test_newest_first_with_a_limit_and_a_cursor(history):
    first = history.search("world", limit=1)
    assert bodies(first) == ["hello again world"]
    assert bodies(history.search("world", before=first[0].seq)) == ["Hello world"]


def test_a_word_of_several_tokens_is_a_phrase(history):
    assert bodies(history.search("foo-bar")) == ["foo-bar baz"]
    assert history.search("bar-foo") == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ('"quote"', ['she said "quote" and left']),
        ('"quote', ['she said "quote" and left']),
        ("NEAR(", ["meet at NEAR the station"]),
        ("NEAR(meet station)", []),  # the phrase "near meet" is not in it
        ("x AND", ["x AND y OR z"]),
        ("OR", ["x AND y OR z"]),
        ("col:value", ["col:value here"]),
        ("-baz", ["foo-bar baz"]),
        ("hel*", []),  # no prefix syntax: the word "hel"
        ("^hello", ["hello again world", "Hello world"]),
        ('"', []),
        ("( ) * : -", []),
        ("", []),
        ("\x00", []),
        ("hel\x00lo", []),
        ("world\x00", ["hello again world", "Hello world"]),
        ("日本語", ["日本語 テキスト"]),
    ],
)
def test_fts5_syntax_is_text(history, text, expected):
    assert bodies(history.search(text)) == expected


def test_the_query_is_quoted_words_and_bounded():
    assert fts_query('say "hi" NEAR(x)') == '"say" """hi""" "NEAR(x)"'
    assert fts_query("  ") is None
    assert fts_query('" * ( )') is None
    many = fts_query(" ".join(f"w{i}" for i in range(100)))
    assert many.count('"') == 2 * MAX_WORDS
    assert len(fts_query("a" * 10_000)) == 102


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text())
def test_no_text_makes_search_fail(history, text):
    found = history.search(text)
    assert all(isinstance(s.seq, int) for s in found)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(OPERATORS), max_size=8))
def test_no_mix_of_fts5_operators_makes_search_fail(history, parts):
    history.search(" ".join(parts))
    history.search("".join(parts))
