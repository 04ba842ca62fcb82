"""The terminal UI end to end in a real terminal: tmux runs ``whisper`` against a node here.

Everything is on 127.0.0.1.  Each test has its own tmux server (``tmux -L <unique name>``),
killed in teardown.  Waiting polls ``capture-pane`` under a deadline, or waits on the test
node's events; no bare sleeps.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trio

from tests.store_helpers import record
from whisper import Config, Delivered, Node
from whisper.identity import Identity
from whisper.identity.stages import IdentityConfig
from whisper.store import History
from whisper.store.dbfile import APP_NAME

TMUX = shutil.which("tmux")
LOCAL = "127.0.0.1"
TIMEOUT = 15
POLL = 0.05

pytestmark = pytest.mark.skipif(
    TMUX is None, reason="tmux is not installed (bash .ci/run installs the Debian package)"
)


def whisper_command() -> list[str]:
    script = Path(sys.executable).with_name("whisper")
    return [str(script)] if script.exists() else [sys.executable, "-m", "whisper"]


class Tmux:
    """One tmux server with one window, running one command under ``sh``."""

    def __init__(self, tmp_path: Path) -> None:
        assert TMUX is not None
        self.base = [TMUX, "-L", f"whisper-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"]
        self.tmp_path = tmp_path

    async def tmux(self, *args: str) -> str:
        done = await trio.run_process([*self.base, *args], capture_stdout=True)
        return done.stdout.decode("utf-8", "replace")

    async def start(self, command: str, *, width: int = 80, height: int = 24) -> None:
        conf = self.tmp_path / "tmux.conf"
        conf.write_text("set -g remain-on-exit on\nset -g status off\n")
        await self.tmux(
            "-f", str(conf), "new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height),
            "-c", str(self.tmp_path), command,
        )  # fmt: skip

    async def keys(self, *keys: str) -> None:
        await self.tmux("send-keys", "-t", "t", *keys)

    async def type(self, text: str) -> None:
        await self.tmux("send-keys", "-t", "t", "-l", text)

    async def screen(self, *, history: bool = False) -> str:
        return await self.tmux("capture-pane", "-p", "-t", "t", *(["-S", "-"] if history else []))

    async def until(self, predicate: Callable[[str], bool], what: str) -> str:
        screen = ""
        try:
            with trio.fail_after(TIMEOUT):
                while not predicate(screen := await self.screen()):
                    await trio.sleep(POLL)
        except trio.TooSlowError:
            pytest.fail(f"timed out waiting for {what}; the screen:\n{screen}")
        return screen

    async def exited(self) -> str:
        """Wait for the pane's command to end; the whole pane, scrolled-off lines included."""
        with trio.fail_after(TIMEOUT):
            while (await self.tmux("display", "-p", "-t", "t", "#{pane_dead}")).strip() != "1":
                await trio.sleep(POLL)
        return await self.screen(history=True)

    async def kill(self) -> None:
        await trio.run_process([*self.base, "kill-server"], check=False, capture_stderr=True)


#: Run after whisper in the pane: its exit status, and the terminal modes it should restore.
AFTER = (
    'echo "exit status $?"; '
    "stty -a | tr ' ' '\\n' | grep -x -E -- '-?(icanon|echo|isig)' | tr '\\n' ' '; echo"
)


def alice(data: Path, *args: str) -> str:
    """The shell command running whisper as alice on loopback, her data under ``data``."""
    argv = [*whisper_command(), "-host", LOCAL, "-port", "0", "-nick", "alice", *args]
    return f"env XDG_DATA_HOME={shlex.quote(str(data))} {shlex.join(argv)}"


@contextlib.asynccontextmanager
async def alice_and_bob(tmp_path: Path, data: Path, **size: int) -> AsyncIterator[tuple[Tmux, Bob]]:
    """Alice's whisper in tmux (``size``: width, height), joined to bob, a node here."""
    async with trio.open_nursery() as nursery:
        bob = Bob()
        await bob.run(nursery)
        tmux = Tmux(tmp_path)
        try:
            await tmux.start(f"{alice(data, '-peer', bob.node.addr)}; {AFTER}", **size)
            yield tmux, bob
        finally:
            await tmux.kill()
            nursery.cancel_scope.cancel()


def rows(screen: str) -> list[str]:
    return screen.rstrip("\n").split("\n")


def prompt_row(screen: str) -> str:
    return rows(screen)[-1]


class Bob:
    """The other peer: a node in this test, and the bodies it hears."""

    def __init__(self) -> None:
        signed = IdentityConfig(Identity.generate())  # a whisper peer signs (extension 13)
        self.node = Node(Config(host=LOCAL, port=0, nick="bob", identity=signed))
        self.heard: list[str] = []
        self._changed = trio.Event()

    async def run(self, nursery: trio.Nursery) -> None:
        await nursery.start(self.node.run)
        await nursery.start(self._collect)

    async def _collect(self, *, task_status: trio.TaskStatus[None]) -> None:
        with self.node.subscribe() as events:
            task_status.started()
            async for event in events:
                if type(event) is Delivered and not event.own:
                    self.heard.append(event.message.body)
                    self._changed.set()
                    self._changed = trio.Event()

    async def hears(self, body: str) -> None:
        with trio.fail_after(TIMEOUT):
            while body not in self.heard:
                await self._changed.wait()


async def test_chat_in_a_real_terminal(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with alice_and_bob(tmp_path, data) as (tmux, bob):
        await tmux.until(  # issue 13: bob dials back on alice's hello, before she speaks
            lambda s: "out 1 in 1  2 online" in s, "bob to dial back and be counted online"
        )

        await tmux.type("hello from alice")
        await tmux.keys("Enter")
        await bob.hears("hello from alice")
        await tmux.until(lambda s: "out 1 in 1" in s, "bob to dial back")

        # A message arrives while a line is half typed: it shows above, the line stays.
        await tmux.type("half typed")
        bob.node.say("hi alice, 你好 👋 שלום")
        bob.node.say("/me waves")
        screen = await tmux.until(lambda s: "* bob waves" in s, "bob's messages")
        lines = rows(screen)
        said = next(i for i, row in enumerate(lines) if "<bob> hi alice, 你好 👋 שלום" in row)
        status = next(i for i, row in enumerate(lines) if row.startswith(" alice "))
        assert said < status == len(lines) - 2
        assert re.fullmatch(r"\d\d:\d\d <bob> hi alice, 你好 👋 שלום", lines[said])
        assert re.search(r"<alice> hello from alice$", screen, re.MULTILINE)
        assert prompt_row(screen) == "> half typed"

        # A peer cannot retitle the terminal or clear it; what it tried is shown inert.
        bob.node.say("\x1b]2;PWNED\x07\x1b[2J\x1b[Hgotcha")
        screen = await tmux.until(lambda s: "gotcha" in s, "the hostile message")
        assert "<bob> ␛]2;PWNED␇␛[2J␛[Hgotcha" in screen
        assert "hello from alice" in screen
        assert "PWNED" not in await tmux.tmux("display", "-p", "-t", "t", "#{pane_title}")

        # Long lines wrap, and a resize redraws everything in the new size.
        bob.node.say("long " + "word " * 40 + "END")
        await tmux.until(lambda s: "END" in s, "the long message")
        await tmux.tmux("resize-window", "-t", "t", "-x", "50", "-y", "16")
        screen = await tmux.until(
            lambda s: len(rows(s)) == 16 and "END" in s and rows(s)[-2].startswith(" alice "),
            "the redraw at 50x16",
        )
        assert max(len(row) for row in rows(screen)) <= 50
        assert prompt_row(screen) == "> half typed"

        # Ctrl-C clears the line, Ctrl-D at the empty line leaves: status 0, terminal sane.
        await tmux.keys("C-c")
        await tmux.until(lambda s: prompt_row(s) == ">", "Ctrl-C to clear the line")
        await tmux.keys("C-d")
        screen = await tmux.exited()
        assert "exit status 0\nisig icanon echo" in screen
        with trio.fail_after(TIMEOUT):  # alice closed her link to bob
            while any(not p.outgoing for p in bob.node.peers()):
                await trio.sleep(POLL)

    history = data / "whisper-p2p" / "history"
    assert [json.loads(line) for line in history.read_text().splitlines()] == ["hello from alice"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "tmux.conf"]


async def test_a_narrow_terminal_wraps_scrolls_mentions_and_shows_long_messages(
    tmp_path: Path,
) -> None:
    """At 40 columns: word wrap under the nick, the status line, PgUp/PgDn, a mention
    (picked out, the bell, counted while scrolled up), a 3,000-character paste read whole,
    /show for a longer one, and /help with the keys."""
    async with alice_and_bob(tmp_path, tmp_path, width=40, height=16) as (tmux, bob):
        await tmux.type("hi")
        await tmux.keys("Enter")
        screen = await tmux.until(lambda s: "out 1 in 1" in s, "bob to dial back")
        status = rows(screen)[-2]
        assert status.startswith(" alice  out 1 in 1  ") and len(status) <= 40, status

        words = "the quick brown fox jumps over the lazy dog again and again"
        bob.node.say(words)
        screen = await tmux.until(
            lambda s: words in " ".join(row.strip() for row in rows(s)), "the sentence"
        )
        first = next(i for i, row in enumerate(rows(screen)) if "<bob> the quick" in row)
        wrapped = rows(screen)[first : first + 3]
        assert wrapped[0].endswith("<bob> the quick brown fox jumps")  # "over": no room
        assert wrapped[1:] == [" " * 12 + "over the lazy dog again and", " " * 12 + "again"]

        bell = "#{window_bell_flag}"
        assert (await tmux.tmux("display", "-p", "-t", "t", bell)).strip() == "0"
        bob.node.say("ALICE: ping")
        await tmux.until(lambda s: "ALICE: ping" in s, "the mention")
        coloured = await tmux.tmux("capture-pane", "-p", "-e", "-t", "t")
        assert re.search(r"\x1b\[[0-9;]*7[0-9;]*mALICE", coloured), coloured
        assert (await tmux.tmux("display", "-p", "-t", "t", bell)).strip() == "1"

        paste = " ".join(f"w{n:04}" for n in range(500))  # 2,999 characters
        bob.node.say(paste)
        screen = await tmux.until(lambda s: "w0498 w0499" in s, "the end of the paste")
        assert "more characters" not in screen
        await tmux.keys("PPage")  # the first press moves
        screen = await tmux.until(lambda s: "[PgDn]" in s, "the view to move up")
        assert "w0499" not in screen
        bob.node.say("alice, again")
        await tmux.until(lambda s: "[1 new, @1 PgDn]" in s, "the unread count")
        for _ in range(3):
            await tmux.keys("NPage")
        screen = await tmux.until(lambda s: "alice, again" in s, "the end again")
        assert "PgDn" not in rows(screen)[-2]

        bob.node.say("BEGIN " + "x" * 12_000 + " FINISH")
        await tmux.until(lambda s: "/show 1)" in s, "the long message, cut")
        await tmux.type("/show 1")
        await tmux.keys("Enter")
        screen = await tmux.until(lambda s: "<bob> BEGIN" in rows(s)[0], "it, whole")
        assert "[PgDn]" in rows(screen)[-2]

        await tmux.type("/help")
        await tmux.keys("Enter")
        screen = await tmux.until(lambda s: "Ctrl-L       redraw" in s, "the keys")
        assert "PgUp / PgDn" in screen
        assert max(len(row) for row in rows(screen)) <= 40
        await tmux.keys("C-d")
        assert "exit status 0\nisig icanon echo" in await tmux.exited()


async def test_sigterm_leaves_cleanly(tmp_path: Path) -> None:
    if not Path("/proc/self/task").exists():
        pytest.skip("finding the whisper process needs /proc")
    command = alice(tmp_path)
    tmux = Tmux(tmp_path)
    try:
        await tmux.start(f"{command}; {AFTER}")
        await tmux.until(lambda s: "listening on" in s, "the screen")
        await tmux.type("half typed")
        await tmux.until(lambda s: prompt_row(s) == "> half typed", "the typing")
        shell = int(await tmux.tmux("display", "-p", "-t", "t", "#{pane_pid}"))
        children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
        assert len(children) == 1
        os.kill(int(children[0]), signal.SIGTERM)
        screen = await tmux.exited()
        assert "exit status 0\nisig icanon echo" in screen
        assert "Traceback" not in screen
    finally:
        await tmux.kill()


async def test_closing_the_terminal_leaves_cleanly(tmp_path: Path) -> None:
    status, errors = tmp_path / "status", tmp_path / "stderr"
    command = (
        f"trap '' HUP; {alice(tmp_path)}"
        f" 2>{shlex.quote(str(errors))}; echo $? >{shlex.quote(str(status))}"
    )  # the shell outlives the terminal to tell how whisper ended
    tmux = Tmux(tmp_path)
    try:
        await tmux.start(command)
        await tmux.until(lambda s: "listening on" in s, "the screen")
    finally:
        await tmux.kill()  # the terminal goes away: SIGHUP, then I/O errors
    with trio.fail_after(TIMEOUT):
        while not status.exists() or not status.read_text():
            await trio.sleep(POLL)
    assert status.read_text() == "0\n"
    assert errors.read_text() == ""


async def test_page_up_at_the_top_loads_older_messages_from_the_history(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with History.open(data / APP_NAME / "messages.sqlite3") as history:
        history.add_messages([record(f"old {n:03}", nick="carol") for n in range(120)])
    tmux = Tmux(tmp_path)
    try:
        await tmux.start(f"{alice(data, '-no-discovery')}; {AFTER}", width=160, height=24)
        screen = await tmux.until(lambda s: "listening on" in s, "the screen")
        assert "<carol> old 119" in screen and "old 069" not in screen
        for oldest in ("old 070", "old 020", "old 000"):
            while oldest not in (screen := await tmux.screen()):
                await tmux.keys("PPage")  # scrolls; at the top it loads the 50 before
                await tmux.until(lambda s, before=screen: s != before, "the view to move")
        assert "[history] <carol> old 000" in screen
        while "no older messages" not in rows(screen)[-2]:
            await tmux.keys("PPage")  # to the top, then past it: nothing older
            await tmux.until(lambda s, before=screen: s != before, "the view or the status")
            screen = await tmux.screen()
        assert rows(screen)[0].endswith("-- earlier: 20 more messages of the history --")
        await tmux.keys("C-d")
        assert "exit status 0\nisig icanon echo" in await tmux.exited()
    finally:
        await tmux.kill()
