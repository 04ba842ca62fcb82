"""The terminal UI shows history and files: render lines, and a session with a real peer."""

from __future__ import annotations

import time
from pathlib import Path

from whisper import Message
from whisper.commands import execute
from whisper.tui.render import message_line, plain

from .test_tui_app import ENTER, Screen, run_screen

NOON = time.mktime((2026, 5, 4, 12, 34, 0, 0, 0, -1))


def test_history_and_file_lines() -> None:
    m = Message.create(id="x", addr="127.0.0.1:1", body="hello", nick="bob")
    assert plain(message_line(m, own=False, when=NOON, history=True)) == (
        "12:34 [history] <bob> hello"
    )
    action = Message.create(id="y", addr="127.0.0.1:1", body="/me waves", nick="bob")
    assert plain(message_line(action, own=False, when=NOON, history=True)) == (
        "12:34 [history] * bob waves"
    )
    shown = message_line(m, own=False, when=NOON, body="[file #2] a\x1b.gif  /save 2")
    assert plain(shown) == "12:34 <bob> [file #2] a\u241b.gif  /save 2"  # still cleaned


def test_history_then_a_file_then_save(tmp_path: Path) -> None:
    picture = tmp_path / "cat.gif"
    picture.write_bytes(b"GIF89a")

    async def script(s: Screen) -> None:
        bob = await s.peer()
        bob.node.say("said before phil came")
        bob.node.say("/me waved before phil came")
        await bob.linked_to(s.node.addr)  # bob's link to phil: the backlog goes first
        await s.until(lambda: "* bob waved before phil came" in s.log())
        await execute(bob.node, f"/send {picture}")
        await s.until(lambda: "/save 1" in s.log())
        s.type(f"/save 1 {tmp_path / 'saved.gif'}{ENTER}")
        await s.until(lambda: "saved #1 as" in s.log())
        s.type(f"/quit{ENTER}")

    screen = run_screen(script)
    lines = screen.ui.log_text()
    history = [line for line in lines if "[history]" in line]
    assert [line[6:] for line in history] == [
        "[history] <bob> said before phil came",
        "[history] * bob waved before phil came",
    ]
    assert any(line.endswith("<bob> [file #1] cat.gif (6 B, image/gif)  /save 1") for line in lines)
    assert (tmp_path / "saved.gif").read_bytes() == b"GIF89a"
