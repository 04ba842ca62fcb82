"""The terminal UI's pure parts: display lines, completion, the history file, front-end choice."""

from __future__ import annotations

import errno
import json
import logging
import stat
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.layout import FormattedTextControl, Window
from prompt_toolkit.layout.mouse_handlers import MouseHandlers
from prompt_toolkit.layout.screen import Screen, WritePosition

from whisper import Message, cli
from whisper.commands import COMMANDS
from whisper.tui import history as history_module
from whisper.tui import session as session_module
from whisper.tui.completion import MAX_NICK_CHARS, MAX_NICKS, ChatCompleter, KnownNicks
from whisper.tui.history import PersistentHistory
from whisper.tui.render import (
    FULL_CHARS,
    MAX_ZERO_WIDTH,
    NICK_WIDTH,
    PALETTE,
    PREVIEW_CHARS,
    Status,
    clean,
    info_line,
    message_line,
    nick_colour,
    plain,
    status_line,
)

NOON = time.mktime((2026, 5, 4, 12, 34, 0, 0, 0, -1))


def msg(body: str, nick: str = "bob", addr: str = "127.0.0.1:6001") -> Message:
    return Message.create(id="x", addr=addr, body=body, nick=nick)


# -- render ------------------------------------------------------------------------------


def test_a_chat_line_is_time_nick_body() -> None:
    assert plain(message_line(msg("hello"), own=False, when=NOON)) == "12:34 <bob> hello"


def test_an_action_shows_as_star_nick_text() -> None:
    line = message_line(msg("/me waves at everyone"), own=False, when=NOON)
    assert plain(line) == "12:34 * bob waves at everyone"
    assert plain(message_line(msg("/meow"), own=False, when=NOON)) == "12:34 <bob> /meow"


def test_no_nick_shows_the_address() -> None:
    assert plain(message_line(msg("hi", nick=""), own=False, when=NOON)) == (
        "12:34 <127.0.0.1:6001> hi"
    )


def test_a_nick_keeps_its_colour_and_our_own_is_bold() -> None:
    def style_of(line: list[tuple[str, str]], text: str) -> str:
        return next(style for style, t in line if t == text)

    first = style_of(message_line(msg("a", nick="carol"), own=False, when=NOON), "carol")
    again = style_of(message_line(msg("b", nick="carol"), own=False, when=NOON + 60), "carol")
    assert first == again == f"class:nick fg:{nick_colour('carol')}"
    own = style_of(message_line(msg("c", nick="carol"), own=True, when=NOON), "carol")
    assert own == first + " bold"
    assert len({nick_colour(n) for n in ["alice", "bob", "carol", "dave", "erin", "frank"]}) > 2
    assert nick_colour("carol") in PALETTE


def test_long_nicks_are_cut_and_long_bodies_shown_whole_up_to_a_limit() -> None:
    line = plain(message_line(msg("x" * 3000, nick="n" * 100), own=False, when=NOON))
    assert f"<{'n' * (NICK_WIDTH - 1)}\u2026> " in line
    assert line.endswith("> " + "x" * 3000)  # a 3,000-character paste is shown whole
    assert plain(message_line(msg("y" * FULL_CHARS), own=False, when=NOON)).endswith("y" * 20)
    long = msg("z" * (FULL_CHARS + 1))
    cut = plain(message_line(long, own=False, when=NOON, number=7))
    more = f"{FULL_CHARS + 1 - PREVIEW_CHARS:,} more characters"
    assert cut.endswith("z" * PREVIEW_CHARS + f"\u2026 ({more}: /show 7)")
    assert plain(message_line(long, own=False, when=NOON, full=True)).endswith("z" * 9000)


def test_a_run_of_combining_marks_is_cut_so_no_screen_cell_holds_more() -> None:
    """prompt_toolkit merges each zero-width character into the cell before it by string
    concatenation: 2,000 marks after one letter took 0.13 s a redraw, on the node's thread."""
    zalgo = "a" + "\u0301" * 40_000 + "\u0316" * 40_000 + ".txt"
    line = message_line(msg(zalgo, nick=zalgo), own=False, when=NOON)
    text = plain(line)
    kept = "a" + "\u0301" * MAX_ZERO_WIDTH
    assert text == f"12:34 <{kept}\u2026> {kept}\u2026 (78,005 more characters)"
    screen = Screen()
    Window(FormattedTextControl(line), wrap_lines=True).write_to_screen(
        screen, MouseHandlers(), WritePosition(0, 0, 80, 24), "", erase_bg=False, z_index=None
    )
    cells = [cell.char for row in screen.data_buffer.values() for cell in row.values()]
    assert max(len(c) for c in cells) == 1 + MAX_ZERO_WIDTH


@pytest.mark.parametrize(
    ("hostile", "shown"),
    [
        ("\x1b[2J", "␛[2J"),  # erase the screen
        ("\x1b]0;owned\x07", "␛]0;owned␇"),  # set the window title
        ("\x07", "␇"),  # bell
        ("\x9b31m", "\ufffd31m"),  # 8-bit CSI
        ("\u202egnp.exe", "\ufffdgnp.exe"),  # right-to-left override
        ("a\rb\nc", "a␍b␊c"),  # overwrite or forge lines
        ("\ud800", "\ufffd"),  # a lone surrogate cannot be encoded for the terminal
    ],
)
def test_hostile_fields_are_neutralised(hostile: str, shown: str) -> None:
    line = plain(message_line(msg(hostile, nick=hostile), own=False, when=NOON))
    assert line == f"12:34 <{shown}> {shown}"
    assert plain(info_line(hostile, when=NOON)) == f"12:34 -!- {shown}"


@pytest.mark.parametrize("text", ["你好世界", "👋🏽 👨‍👩‍👧", "שלום עולם", "مرحبا", "e\u0301"])
def test_unicode_text_is_kept_as_written(text: str) -> None:
    assert plain(message_line(msg(text, nick=text), own=False, when=NOON)) == (
        f"12:34 <{text}> {text}"
    )


@given(st.text())
def test_clean_text_holds_nothing_a_terminal_would_act_on(text: str) -> None:
    out = clean(text)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000 for c in out)
    assert not set(out) & set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    out.encode("utf-8")


def test_the_status_line() -> None:
    status = Status(nick="phil", addr="10.0.0.5:55555", outgoing=2, incoming=3)
    assert plain(status_line(status, "", warning=False, scrolled=False)) == (
        " phil  10.0.0.5:55555  out 2 in 3 "
    )
    text = plain(status_line(status, "12:00 lost x\x1b[1m", warning=True, scrolled=True))
    assert text.endswith("out 2 in 3  -- more below (PgDn) --  12:00 lost x␛[1m")
    nameless = Status(nick="", addr="1.2.3.4:5", outgoing=0, incoming=0)
    assert plain(status_line(nameless, "", warning=False, scrolled=False)).startswith(" (no nick) ")


# -- completion --------------------------------------------------------------------------


def complete(text: str, nicks: list[str], addresses: list[str] = ()) -> list[str]:
    completer = ChatCompleter(lambda: nicks, lambda: addresses)
    document = Document(text, len(text))
    found = completer.get_completions(document, CompleteEvent(completion_requested=True))
    return [text[: len(text) + c.start_position] + c.text for c in found]


def test_commands_complete_from_the_shared_command_table() -> None:
    assert complete("/co", []) == ["/connect "]
    assert complete("/C", []) == ["/connect ", "/channels", "/clear"]
    assert complete("/q", []) == ["/quit"]
    assert complete("/zz", []) == []
    assert len(complete("/", [])) == len(COMMANDS)


def test_addresses_complete_after_connect_and_disconnect() -> None:
    addrs = ["127.0.0.1:6001", "10.0.0.5:55555"]
    assert complete("/disconnect 127", [], addrs) == ["/disconnect 127.0.0.1:6001"]
    assert complete("/connect ", [], addrs) == ["/connect " + a for a in addrs]
    assert complete("/nick 127", ["127x"], addrs) == ["/nick 127x "]


def test_nicks_complete_with_a_colon_at_the_start_of_a_line() -> None:
    nicks = ["Bobby", "bea", "carol"]
    assert complete("bo", nicks) == ["Bobby: "]
    assert complete("b", nicks) == ["Bobby: ", "bea: "]
    assert complete("hi CA", nicks) == ["hi carol "]
    assert complete("hi ", nicks) == []
    assert complete("", nicks) == []


def test_known_nicks_are_recent_first_cleaned_and_bounded() -> None:
    known = KnownNicks(limit=3)
    for nick in ["a", "b", "c", "a", "d", "ev\x1bil", "two words", ""]:
        known.heard(nick)
    assert known.recent() == ["ev␛il", "d", "a"]


def test_known_nicks_are_bounded_in_size() -> None:
    """A peer writes any Nick up to the message size: 500 of 1 MiB held 500 MiB."""
    known = KnownNicks()
    for n in range(MAX_NICKS):
        known.heard(f"{n}" + "x" * 100_000)
    known.heard("x" * MAX_NICK_CHARS)
    assert known.recent() == ["x" * MAX_NICK_CHARS]


# -- history -----------------------------------------------------------------------------


def test_the_history_lives_in_the_user_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    path = history_module.default_path()
    if path.is_relative_to(tmp_path / "xdg"):  # Linux and the other XDG platforms
        assert path == tmp_path / "xdg" / "whisper-p2p" / "history"
    assert path.is_absolute()
    assert not path.is_relative_to(Path.cwd())


def test_history_round_trips_any_text_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "history"
    entries = ["plain", "with\nnewline", "line\u2028sep", "你好 👋", "lone \ud800 surrogate"]
    history = PersistentHistory(path)
    for entry in entries:
        history.append_string(entry)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(path.read_text().splitlines()) == len(entries)
    assert list(PersistentHistory(path).load_history_strings()) == entries[::-1]


def test_history_skips_garbage_lines(tmp_path: Path) -> None:
    path = tmp_path / "history"
    path.write_text('"one"\nnot json\n42\n""\n"two"\n\xff\n')
    assert list(PersistentHistory(path).load_history_strings()) == ["two", "one"]


def test_history_keeps_the_newest_and_compacts_the_file(tmp_path: Path) -> None:
    path = tmp_path / "history"
    history = PersistentHistory(path, max_entries=5)
    for n in range(9):
        history.store_string(f"line {n}")
    assert len(path.read_text().splitlines()) == 9
    history.store_string("line 9")  # twice the limit: compacted
    assert [json.loads(x) for x in path.read_text().splitlines()] == [
        f"line {n}" for n in range(5, 10)
    ]
    assert list(PersistentHistory(path, max_entries=3).load_history_strings()) == [
        "line 9",
        "line 8",
        "line 7",
    ]


def test_an_unwritable_history_warns_once_and_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    history = PersistentHistory(blocker / "history")  # a directory that cannot be made
    history.append_string("one")
    history.append_string("two")
    assert list(history.get_strings()) == ["one", "two"]
    assert len([r for r in caplog.records if "input history" in r.message]) == 1


# -- front-end choice and logging ----------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "stdin_tty", "stdout_tty", "tui"),
    [
        ([], True, True, True),
        (["-headless"], True, True, False),
        (["-json"], True, True, False),
        ([], False, True, False),
        ([], True, False, False),
    ],
)
def test_the_terminal_ui_runs_only_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, flags: list[str], stdin_tty: bool, stdout_tty: bool, tui: bool
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: stdin_tty)
    monkeypatch.setattr("sys.stdout.isatty", lambda: stdout_tty)
    assert cli._use_tui(cli.build_parser().parse_args(flags)) is tui


def test_cli_runs_the_tui_and_keeps_its_error_rules(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = []
    logger = logging.getLogger("whisper")
    monkeypatch.setattr(logger, "handlers", [])  # main() adds its stderr handler here
    monkeypatch.setattr(logger, "level", logger.level)
    monkeypatch.setattr(cli, "_use_tui", lambda args: True)
    monkeypatch.setattr(
        "whisper.tui.run_tui", lambda node, show_log, notes=None: calls.append(show_log)
    )
    assert cli.main(["-host", "127.0.0.1", "-port", "0", "-v"]) == 0
    assert calls == [True]

    def in_use(node: object, show_log: bool, notes: object = None) -> None:
        raise OSError(errno.EADDRINUSE, "Address already in use")

    monkeypatch.setattr("whisper.tui.run_tui", in_use)
    assert cli.main(["-host", "127.0.0.1", "-port", "0"]) == 1
    assert "the port is in use" in capsys.readouterr().err


def test_logging_goes_to_the_screen_not_the_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    shown: list[tuple[list[str], bool]] = []

    class FakeUI:
        def show_info(self, lines: list[str], *, warning: bool = False) -> None:
            shown.append((lines, warning))

    logger = logging.getLogger("whisper.node")
    before = logging.getLogger("whisper").handlers[:]
    with session_module._log_to_screen(FakeUI(), show=True):  # type: ignore[arg-type]
        logger.warning("dropped %s", "x")
    with session_module._log_to_screen(FakeUI(), show=False):  # type: ignore[arg-type]
        logger.warning("not shown")
    assert shown == [(["dropped x"], True)]
    assert logging.getLogger("whisper").handlers == before
    assert "not shown" not in capsys.readouterr().err
