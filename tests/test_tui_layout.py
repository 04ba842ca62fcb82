"""The terminal UI's layout: wrapping at word boundaries, the scrollback's view, the status
line's width, mentions.  Pure: no terminal, no node."""

from __future__ import annotations

import re
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from whisper import Message
from whisper.tui.app import KEYS, key_help
from whisper.tui.render import (
    FULL_CHARS,
    Status,
    info_line,
    mentions,
    message_line,
    plain,
    status_line,
    too_long,
)
from whisper.tui.scrollback import Scrollback
from whisper.tui.wrap import cells, wrap

NOON = time.mktime((2026, 5, 4, 12, 34, 0, 0, 0, -1))
WORDS = "the quick brown fox jumps over the lazy dog " * 3


def msg(body: str, nick: str = "bob") -> Message:
    return Message.create(id="x", addr="127.0.0.1:6001", body=body, nick=nick)


def rows(line, width: int) -> list[str]:
    return [plain(row) for row in wrap(line, width)]


# -- wrapping ---------------------------------------------------------------------------


def test_a_message_wraps_at_words_under_the_nick() -> None:
    shown = rows(message_line(msg(WORDS.strip()), own=False, when=NOON), 40)
    assert shown[0] == "12:34 <bob> the quick brown fox jumps"
    indent = " " * len("12:34 <bob> ")
    assert all(row.startswith(indent) and row[len(indent)] != " " for row in shown[1:])
    assert all(len(row) <= 40 for row in shown)
    assert (
        " ".join(row.strip() for row in shown).split()
        == plain(message_line(msg(WORDS), own=False, when=NOON)).split()
    )  # nothing lost, no word split


def test_a_word_wider_than_a_row_is_split_and_wide_characters_break_anywhere() -> None:
    shown = rows(message_line(msg("see " + "x" * 70 + " ok"), own=False, when=NOON), 40)
    assert shown[0] == "12:34 <bob> see " + "x" * 24  # a long word starts where it is
    assert shown[1] == " " * 12 + "x" * 28 and shown[2].strip() == "x" * 18 + " ok"
    cjk = rows(message_line(msg("你好世界" * 10), own=False, when=NOON), 30)
    assert cjk[0] == "12:34 <bob> 你好世界你好世界你" and all(cells(row) <= 30 for row in cjk)


def test_an_indent_over_half_the_width_falls_back_under_the_time() -> None:
    long_nick = message_line(msg(WORDS, nick="n" * 20), own=False, when=NOON, history=True)
    shown = rows(long_nick, 40)
    assert all(row.startswith("      ") and row[6] != " " for row in shown[1:])
    info = rows(info_line(WORDS, when=NOON), 40)
    assert info[1].startswith(" " * len("12:34 -!- ")) and info[1][10] != " "


@given(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"])), st.integers(1, 120)
)
def test_no_row_is_wider_than_the_screen_and_no_text_is_lost(text: str, width: int) -> None:
    line = message_line(msg(text or "x"), own=False, when=NOON)
    wrapped = wrap(line, width)
    for row in wrapped:
        assert cells(plain(row)) <= width or len(plain(row).strip()) == 1
    kept = "".join(plain(row) for row in wrapped).replace(" ", "")
    assert kept == plain(line).replace(" ", "")


# -- the scrollback ---------------------------------------------------------------------


def numbered(count: int, *, width: int = 40, height: int = 10) -> Scrollback:
    sb = Scrollback(1000, 1_000_000)
    for n in range(count):
        sb.append(info_line(f"line {n}", when=NOON))
    sb.create_content(width, height)
    return sb


def top(sb: Scrollback) -> str:
    sb.create_content(sb.width, sb.height)
    return plain(sb.shown[0])


def test_the_first_page_up_at_the_end_moves_the_view() -> None:
    sb = numbered(100)
    assert top(sb).endswith("line 90")
    sb.scroll(-sb.page())
    assert sb.view is not None and top(sb).endswith("line 82")  # a page, less 2 rows


def test_the_first_page_down_at_the_top_moves_the_view() -> None:
    sb = numbered(100)
    for _ in range(20):
        sb.scroll(-sb.page())
    assert top(sb).endswith("line 0")
    sb.scroll(-sb.page())
    assert top(sb).endswith("line 0")  # the top: nothing further up
    sb.scroll(sb.page())
    assert top(sb).endswith("line 8")
    while sb.view is not None:
        sb.scroll(sb.page())
    assert top(sb).endswith("line 90")  # back at the end: following again


def test_a_held_view_stays_put_and_counts_what_arrives() -> None:
    sb = numbered(100)
    sb.scroll(-sb.page())
    held = top(sb)
    sb.append(message_line(msg("news"), own=False, when=NOON), message=True)
    sb.append(message_line(msg("hi bob"), own=False, when=NOON), message=True, mention=True)
    sb.append(info_line("a notice", when=NOON))
    assert top(sb) == held and (sb.unread, sb.mentioned) == (2, 1)
    sb.follow()
    assert (sb.unread, sb.mentioned) == (0, 0) and top(sb).endswith("line 93")
    assert plain(sb.shown[-1]).endswith("-!- a notice")


def test_everything_fitting_leaves_nothing_to_scroll() -> None:
    sb = numbered(5)
    sb.scroll(-sb.page())
    assert sb.view is None


def test_a_resize_rewraps_and_keeps_the_view_valid() -> None:
    sb = Scrollback(1000, 1_000_000)
    for n in range(30):
        sb.append(message_line(msg(f"{n} {WORDS}"), own=False, when=NOON))
    sb.create_content(40, 10)
    sb.scroll(-30)
    sb.create_content(120, 10)
    assert all(cells(plain(row)) <= 120 for row in sb.shown) and len(sb.shown) == 10
    sb.create_content(120, 400)  # everything fits now: follow the end
    assert sb.view is None


def test_older_lines_go_before_the_first_and_a_held_view_stays_on_its_line() -> None:
    sb = numbered(30)
    while not sb.at_top():
        sb.scroll(-sb.page())
    assert top(sb).endswith("line 0") and sb.view == (0, 0)
    older = [info_line(f"older {n}", when=NOON) for n in range(25)]
    assert sb.prepend(older) == 25
    assert top(sb).endswith("line 0") and not sb.at_top()  # held on the same line
    sb.scroll(-sb.page())
    assert top(sb).endswith("older 17")
    assert plain(sb.lines[0]).endswith("older 0") and sb.first == -25


def test_older_lines_count_against_the_bounds_and_the_newest_of_them_are_taken() -> None:
    sb = Scrollback(10, 1_000_000)
    for n in range(6):
        sb.append(info_line(f"line {n}", when=NOON))
    assert sb.prepend([info_line(f"older {n}", when=NOON) for n in range(8)]) == 4
    assert [plain(x).split("-!- ")[1] for x in sb.lines[:5]] == [
        "older 4",
        "older 5",
        "older 6",
        "older 7",
        "line 0",
    ]
    assert sb.prepend([info_line("more", when=NOON)]) == 0
    tight = Scrollback(100, 60)
    tight.append(info_line("x" * 30, when=NOON))
    assert tight.prepend([info_line("y" * 40, when=NOON)]) == 0  # characters too


def test_the_scrollback_is_bounded_in_lines_and_characters() -> None:
    sb = Scrollback(100, 50_000)
    for n in range(1000):
        sb.append(info_line(f"{n} " + "x" * 1000, when=NOON))
    assert len(sb.lines) <= 50 and sum(len(plain(x)) for x in sb.lines) <= 50_000
    assert plain(sb.lines[-1]).startswith("12:34 -!- 999 ")
    small = Scrollback(100, 10**9)
    for n in range(1000):
        small.append(info_line(str(n), when=NOON))
    assert 100 <= len(small.lines) <= 110 and plain(small.lines[-1]).endswith("999")


# -- mentions ---------------------------------------------------------------------------


def test_a_mention_is_our_nick_as_a_whole_word_in_any_case() -> None:
    for body in ("phil: look", "hey PHIL!", "@Phil", "/me waves at phil", "(phil)"):
        assert mentions(body, "phil"), body
    for body in ("philosophy", "xphil", "phil_x", "/me", "nothing"):
        assert not mentions(body, "phil"), body
    assert not mentions("anything", "") and mentions("ping [x]!", "[x]")
    assert not mentions("/me waves", "me")  # the action's prefix is not a word said


def test_a_mention_is_picked_out_in_someone_elses_message_only() -> None:
    line = message_line(msg("hey Phil, phil!"), own=False, when=NOON, me="phil")
    picked = [text for style, text in line if "class:mention" in style]
    assert picked == ["Phil", "phil"] and plain(line) == "12:34 <bob> hey Phil, phil!"
    own = message_line(msg("I am phil"), own=True, when=NOON, me="phil")
    assert not any("class:mention" in style for style, _ in own)


# -- the status line ----------------------------------------------------------------------

STATUS = Status(nick="alice", addr="127.0.0.1:6001", outgoing=1, incoming=2)


def test_the_status_line_stays_readable_at_40_columns() -> None:
    notice = "12:34 connected to 127.0.0.1:6002"
    wide = plain(status_line(STATUS, notice, warning=False, scrolled=False, width=100))
    assert wide == f" alice  127.0.0.1:6001  out 1 in 2  {notice}"
    narrow = plain(status_line(STATUS, notice, warning=False, scrolled=False, width=40))
    assert narrow.startswith(" alice  out 1 in 2  12:34 connected") and cells(narrow) <= 40
    held = status_line(
        STATUS, notice, warning=False, scrolled=True, unread=3, mentioned=1, width=40
    )
    assert plain(held).startswith(" alice  out 1 in 2  [3 new, @1 PgDn] ")
    assert cells(plain(held)) <= 40
    full = plain(status_line(STATUS, "", warning=False, scrolled=True, unread=3, mentioned=2))
    assert "-- 3 new, 2 mentions of you (PgDn) --" in full
    idle = plain(status_line(STATUS, "", warning=False, scrolled=False, width=40))
    assert idle == " alice  127.0.0.1:6001  out 1 in 2 "  # room for the address


@given(st.integers(10, 200), st.text(max_size=80), st.integers(0, 10_000))
def test_the_status_line_never_overflows(width: int, notice: str, unread: int) -> None:
    line = status_line(STATUS, notice, warning=False, scrolled=True, unread=unread, width=width)
    assert cells(plain(line)) <= max(width, len(" alice  out 1 in 2  [99999 new PgDn] "))


# -- keys ---------------------------------------------------------------------------------


def test_help_lists_the_keys_as_the_readme_does() -> None:
    lines = key_help()
    assert lines[0] == "keys:" and len(lines) == len(KEYS) + 1
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = re.findall(r"^\| ([^|]+?) \| [^|]*\|$", readme.split("### The terminal UI")[1], re.M)
    assert [key for key, _ in KEYS] == [k for k in table if k not in ("key", "---")][: len(KEYS)]


def test_an_action_is_too_long_by_its_text_as_shown() -> None:
    assert not too_long("/me " + "a" * FULL_CHARS) and too_long("/me " + "a" * (FULL_CHARS + 1))
    assert too_long("b" * (FULL_CHARS + 1)) and not too_long("b" * FULL_CHARS)
