"""The terminal UI driven through a pipe: real nodes on loopback, keys typed into the app.

Each test is a plain function: ``guest.run`` starts asyncio + prompt_toolkit with trio as a
guest, exactly as ``whisper`` does, and the test's script runs on the trio side next to the
session.  Waiting is on events: a redraw of the screen, or a peer's event channel.
"""

from __future__ import annotations

import io
import json
import socket
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput, Output
from prompt_toolkit.output.vt100 import Vt100_Output

from whisper import Config, Delivered, Node
from whisper.tui import Session, guest
from whisper.tui.history import PersistentHistory
from whisper.tui.render import plain

LOCAL = "127.0.0.1"
TIMEOUT = 10

ENTER = "\r"
TAB = "\t"
CTRL_C = "\x03"
CTRL_D = "\x04"
UP = "\x1b[A"
PAGE_UP = "\x1b[5~"
PAGE_DOWN = "\x1b[6~"


class Peer:
    """A second node in the test, with the chat bodies it has received."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.bodies: list[str] = []
        self._changed = trio.Event()

    async def collect(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED):
        with self.node.subscribe() as events:
            task_status.started()
            async for event in events:
                if type(event) is Delivered and not event.own:
                    self.bodies.append(event.message.body)
                    self._changed.set()
                    self._changed = trio.Event()

    async def received(self, *bodies: str) -> None:
        with trio.fail_after(TIMEOUT):
            while self.bodies[-len(bodies) :] != list(bodies):
                await self._changed.wait()

    async def linked_to(self, addr: str) -> None:
        """Dial ``addr`` and wait until the link is up."""
        with self.node.subscribe() as events:
            self.node.connect(addr)
            with trio.fail_after(TIMEOUT):
                async for event in events:
                    if getattr(event, "text", "") == f"connected to {addr}":
                        return


class Screen:
    """One session on a pipe input, and what a test script needs to drive it."""

    def __init__(
        self,
        pipe: PipeInput,
        output: Output,
        history: PersistentHistory | None,
        notes: Callable[[], list[str]] | None = None,
    ) -> None:
        self.pipe = pipe
        self.node = Node(Config(host=LOCAL, port=0, nick="phil"))
        self.session = Session(self.node, input=pipe, output=output, history=history, notes=notes)
        self.ui = self.session.ui
        self.nursery: trio.Nursery | None = None

    def type(self, text: str) -> None:
        self.pipe.send_text(text)

    @property
    def line(self) -> str:
        return self.ui.input.text

    def log(self) -> str:
        return "\n".join(self.ui.log_text())

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Wait for the screen to be redrawn until ``predicate()`` holds."""
        app = self.ui.app
        token = trio.lowlevel.current_trio_token()
        with trio.fail_after(TIMEOUT):
            while not predicate():
                drawn = trio.Event()

                def on_render(_: object, drawn: trio.Event = drawn) -> None:
                    token.run_sync_soon(drawn.set)

                app.after_render += on_render
                try:
                    await drawn.wait()
                finally:
                    app.after_render -= on_render

    async def peer(self, nick: str = "bob") -> Peer:
        assert self.nursery is not None
        peer = Peer(Node(Config(host=LOCAL, port=0, nick=nick)))
        await self.nursery.start(peer.node.run)
        await self.nursery.start(peer.collect)
        return peer

    async def linked_peer(self, nick: str = "bob") -> Peer:
        """A peer with links both ways: it hears us and we hear it."""
        peer = await self.peer(nick)
        await peer.linked_to(self.node.addr)
        self.type(f"/connect {peer.node.addr}{ENTER}")
        await self.until(lambda: "out 1 in 1" in self.ui.status_text())
        return peer

    def run(self, script: Callable[[Screen], Awaitable[None]]) -> None:
        """Run the session with ``script``; returns when the app has exited."""

        async def main(*, task_status: trio.TaskStatus[None]) -> None:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery

                async def session(*, task_status: trio.TaskStatus[None]) -> None:
                    await self.session.run(task_status=task_status)
                    nursery.cancel_scope.cancel()  # /quit: the test's peers go too

                await nursery.start(session)
                task_status.started()
                with trio.fail_after(TIMEOUT):
                    await script(self)
                    await trio.sleep_forever()  # the script ends the app, or fails

        guest.run(main, self.ui.app)


def run_screen(
    script: Callable[[Screen], Awaitable[None]],
    *,
    output: Output | None = None,
    history: PersistentHistory | None = None,
    notes: Callable[[], list[str]] | None = None,
) -> Screen:
    with create_pipe_input() as pipe:
        screen = Screen(pipe, output or DummyOutput(), history, notes)
        screen.run(script)
    assert not screen.ui.app.is_running
    return screen


# -- typing and chatting ---------------------------------------------------------------


def test_a_typed_line_is_sent_and_echoed() -> None:
    async def script(s: Screen) -> None:
        bob = await s.linked_peer()
        s.type(f"hello there{ENTER}")
        await bob.received("hello there")
        await s.until(lambda: "<phil> hello there" in s.log())
        assert s.line == ""
        s.type(f"/quit{ENTER}")

    run_screen(script)


def test_incoming_text_leaves_a_half_typed_line_alone() -> None:
    async def script(s: Screen) -> None:
        bob = await s.linked_peer()
        s.type("half typ")
        await s.until(lambda: s.line == "half typ")
        bob.node.say("hi phil")
        bob.node.say("/me waves")
        await s.until(lambda: "* bob waves" in s.log())
        assert "<bob> hi phil" in s.log()
        assert s.line == "half typ"
        assert s.ui.input.cursor_position == len("half typ")
        s.type(f"ed{ENTER}")
        await bob.received("half typed")
        s.type(CTRL_D)

    run_screen(script)


def test_actions_and_slash_escapes_go_out_as_the_protocol_says() -> None:
    async def script(s: Screen) -> None:
        bob = await s.linked_peer()
        s.type(f"/me waves{ENTER}//not a command{ENTER}")
        await bob.received("/me waves", "/not a command")
        await s.until(lambda: "<phil> /not a command" in s.log())
        assert "* phil waves" in s.log()
        s.type(CTRL_D)

    run_screen(script)


def test_a_pasted_block_is_sent_line_by_line() -> None:
    async def script(s: Screen) -> None:
        bob = await s.linked_peer()
        s.type(f"\x1b[200~first line\nsecond line\x1b[201~{ENTER}")
        await bob.received("first line", "second line")
        s.type(CTRL_D)

    run_screen(script)


# -- commands --------------------------------------------------------------------------


def test_commands_reply_in_the_message_area() -> None:
    async def script(s: Screen) -> None:
        s.type(f"/help{ENTER}")
        await s.until(lambda: "/connect HOST:PORT" in s.log())
        s.type(f"/nosuch thing{ENTER}")
        await s.until(lambda: "unknown command /nosuch: type /help for the list" in s.log())
        s.type(f"/connect nonsense{ENTER}")
        await s.until(lambda: "usage: /connect HOST:PORT" in s.log())
        s.type(f"/peers{ENTER}")
        await s.until(lambda: f"0 outgoing, 0 incoming; we are {s.node.addr}" in s.log())
        s.type(f"/nick phyllis{ENTER}")
        await s.until(lambda: "you are now phyllis" in s.log())
        assert s.ui.status_text().startswith(" phyllis ")
        s.type(f"/clear{ENTER}")
        await s.until(lambda: s.ui.log_text() == [])
        s.type(f"/quit{ENTER}")

    run_screen(script)


def test_status_line_shows_address_counts_and_the_latest_notice() -> None:
    async def script(s: Screen) -> None:
        bob = await s.peer()
        s.type(f"/connect {bob.node.addr}{ENTER}")
        # bob dials back on our hello, and his presence reaches us: "bob joined"
        await s.until(lambda: "out 1 in 1  2 online" in s.ui.status_text())
        status = s.ui.status_text()
        assert status.startswith(f" phil  {s.node.addr}  out 1 in 1  2 online ")
        await s.until(lambda: "-!- bob joined" in s.log())  # chat: in the message area
        assert f"connected to {bob.node.addr}" not in s.log()  # a link: the status line only
        s.type(f"/disconnect {bob.node.addr}{ENTER}")
        await s.until(lambda: f"disconnected from {bob.node.addr}" in s.ui.status_text())
        assert "out 0 in 1" in s.ui.status_text()
        s.type(CTRL_D)

    run_screen(script)


def test_notes_are_shown_at_start_once_the_node_runs() -> None:
    """``-http`` beside the terminal UI: the page's address, which the screen hid."""
    asked: list[bool] = []

    def notes() -> list[str]:
        asked.append(True)
        return ["web: open http://127.0.0.1:8888/?token=tt\x1b[2J"]

    async def script(screen: Screen) -> None:
        await screen.until(lambda: "web: open http://127.0.0.1:8888/?token=tt" in screen.log())
        assert "token=tt" in screen.ui.status_text()  # a notice: the status line too
        assert "\x1b" not in screen.log()
        screen.type(CTRL_D)

    run_screen(script, notes=notes)
    assert asked == [True]  # once


# -- leaving ---------------------------------------------------------------------------


def test_ctrl_c_clears_a_line_then_exits() -> None:
    async def script(s: Screen) -> None:
        s.type("something")
        await s.until(lambda: s.line == "something")
        s.type(CTRL_C)
        await s.until(lambda: s.line == "")
        assert s.ui.app.is_running
        s.type(CTRL_C)

    run_screen(script)


def test_ctrl_d_deletes_with_text_and_exits_at_an_empty_line() -> None:
    async def script(s: Screen) -> None:
        s.type("abc\x1b[D\x1b[D")  # two left arrows: the cursor is on "b"
        await s.until(lambda: s.ui.input.cursor_position == 1)
        s.type(CTRL_D)
        await s.until(lambda: s.line == "ac")
        assert s.ui.app.is_running
        s.type(f"\x05\x15{CTRL_D}")  # Ctrl-E Ctrl-U empties the line

    run_screen(script)


def test_leaving_closes_the_connections() -> None:
    peers: list[Peer] = []

    async def script(s: Screen) -> None:
        peers.append(await s.linked_peer())
        s.type(f"/quit{ENTER}")

    screen = run_screen(script)
    assert screen.node.peers() == []


def test_the_node_failing_to_start_is_raised_before_any_screen() -> None:
    with socket.socket() as taken:
        taken.bind((LOCAL, 0))
        taken.listen()
        port = taken.getsockname()[1]
        with create_pipe_input() as pipe:
            node = Node(Config(host=LOCAL, port=port))
            session = Session(node, input=pipe, output=DummyOutput())
            with pytest.raises(OSError):
                guest.run(session.run, session.ui.app)
            assert not session.ui.app.is_running


def test_a_failure_on_the_trio_side_exits_the_app_and_is_raised() -> None:
    class Boom(Exception):
        pass

    async def script(s: Screen) -> None:
        await s.until(lambda: "listening on" in s.log())
        raise Boom

    with pytest.raises(Boom):
        run_screen(script)


# -- history and completion ------------------------------------------------------------


def test_history_walks_up_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "data" / "history"

    async def first(s: Screen) -> None:
        s.type(f"/nick one{ENTER}/nick two{ENTER}")
        await s.until(lambda: "you are now two" in s.log())
        s.type(UP)
        await s.until(lambda: s.line == "/nick two")
        s.type(UP)
        await s.until(lambda: s.line == "/nick one")
        s.type(f"{CTRL_C}{CTRL_C}")

    run_screen(first, history=PersistentHistory(path))
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        "/nick one",
        "/nick two",
    ]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    async def second(s: Screen) -> None:
        await s.until(lambda: "listening on" in s.log())
        s.type(UP)
        await s.until(lambda: s.line == "/nick two")
        s.type(CTRL_C + CTRL_C)

    run_screen(second, history=PersistentHistory(path))


def test_tab_completes_commands_addresses_and_nicks() -> None:
    async def script(s: Screen) -> None:
        bob = await s.linked_peer("bobby")
        bob.node.say("hello")
        await s.until(lambda: "<bobby> hello" in s.log())
        s.type(f"/he{TAB}")
        await s.until(lambda: s.line == "/help")
        s.type(f"{CTRL_C}/discon{TAB}")  # /disc: /disconnect and /discover
        await s.until(lambda: s.line == "/disconnect ")
        s.type(TAB)
        await s.until(lambda: s.line == f"/disconnect {bob.node.addr}")
        s.type(f"{CTRL_C}bo{TAB}")
        await s.until(lambda: s.line == "bobby: ")
        s.type(f"hi {CTRL_C}/c{TAB}")  # /connect and /clear: a menu, Tab picks the first
        await s.until(lambda: s.ui.input.complete_state is not None)
        s.type(TAB)
        await s.until(lambda: s.line == "/connect ")
        s.type(ENTER)  # takes the completion, sends nothing
        await s.until(lambda: s.ui.input.complete_state is None)
        assert s.line == "/connect "
        s.type(f"{CTRL_C}{CTRL_C}")

    run_screen(script)


# -- the message area --------------------------------------------------------------------


def top_row(s: Screen) -> str:
    shown = s.ui.scrollback.shown
    return plain(shown[0]) if shown else ""


def test_every_page_key_press_moves_the_view() -> None:
    """The message area is 38 rows here (DummyOutput: 40 rows); a page is 36."""

    async def script(s: Screen) -> None:
        await s.until(lambda: "listening on" in s.log())
        s.ui.clear()
        for n in range(100):
            s.ui.show_info([f"line {n}"])
        await s.until(lambda: top_row(s).endswith("-!- line 62"))
        s.type(PAGE_UP)  # the first press at the end moves at once
        await s.until(lambda: top_row(s).endswith("-!- line 26"))
        assert "more below" in s.ui.status_text()
        s.ui.show_info(["a new line"])
        await s.until(lambda: plain(s.ui.scrollback.lines[-1]).endswith("a new line"))
        await s.until(lambda: True)  # one more redraw: the view did not move
        assert top_row(s).endswith("-!- line 26")
        s.type(PAGE_UP + PAGE_UP)
        await s.until(lambda: top_row(s).endswith("-!- line 0"))
        s.type(PAGE_DOWN)  # the first press at the top moves at once
        await s.until(lambda: top_row(s).endswith("-!- line 36"))
        s.type(PAGE_DOWN + PAGE_DOWN)
        await s.until(lambda: s.ui.scrollback.view is None)
        assert "more below" not in s.ui.status_text()
        assert plain(s.ui.scrollback.shown[-1]).endswith("a new line")
        s.type(CTRL_D)

    run_screen(script)


class BellOutput(DummyOutput):
    def __init__(self) -> None:
        super().__init__()
        self.bells = 0

    def bell(self) -> None:
        self.bells += 1


def test_a_mention_is_picked_out_rings_once_and_is_counted_while_scrolled_up() -> None:
    output = BellOutput()

    async def script(s: Screen) -> None:
        bob = await s.linked_peer()
        bob.node.say("hey Phil, look")
        await s.until(lambda: "<bob> hey Phil, look" in s.log())
        assert output.bells == 1
        assert ("class:mention", "Phil") in [
            (style.split()[-1], text) for style, text in s.ui.scrollback.lines[-1]
        ]
        for n in range(60):
            s.ui.show_info([f"filler {n}"])
        s.type(PAGE_UP)
        await s.until(lambda: s.ui.scrollback.view is not None)
        bob.node.say("phil, again")  # within BELL_INTERVAL: no second ring
        bob.node.say("philosophy is not a mention")
        await s.until(lambda: "philosophy" in s.log())
        await s.until(lambda: "2 new, 1 mention of you (PgDn)" in s.ui.status_text())
        assert output.bells == 1
        s.type(f"me, phil{ENTER}")  # our own message: no mention; sending follows the end
        await s.until(lambda: "<phil> me, phil" in s.log() and s.ui.scrollback.view is None)
        assert output.bells == 1 and "new" not in s.ui.status_text()
        s.type(CTRL_D)

    run_screen(script, output=output)


def test_a_long_message_is_shown_whole_and_a_longer_one_with_show() -> None:
    async def script(s: Screen) -> None:
        bob = await s.linked_peer()
        paste = " ".join(f"w{n:04}" for n in range(500))  # 2,999 characters
        bob.node.say(paste)
        await s.until(lambda: f"<bob> {paste}" in s.log())
        huge = "start " + "y" * 12_000 + " END"
        bob.node.say(huge)
        await s.until(lambda: "more characters: /show 1)" in s.log())
        assert "END" not in s.log()
        s.type(f"/show 1{ENTER}")
        await s.until(lambda: s.log().endswith(f"<bob> {huge}"))
        number = s.ui.scrollback.end - 1
        assert s.ui.scrollback.view == (number, 0)  # its first row at the top
        await s.until(lambda: "<bob> start " + "y" * 10 in top_row(s))
        s.type(f"/show 2{ENTER}")
        await s.until(lambda: "no message #2 to show" in s.log())
        s.type(CTRL_D)

    run_screen(script)


def test_help_lists_the_keys_too() -> None:
    async def script(s: Screen) -> None:
        s.type(f"/help{ENTER}")
        await s.until(lambda: "keys:" in s.log())
        log = s.log()
        assert log.index("/connect HOST:PORT") < log.index("keys:")
        assert "PgUp / PgDn" in log and "Ctrl-L" in log and "/show N" in log
        s.type(CTRL_D)

    run_screen(script)


# -- hostile peers -------------------------------------------------------------------------

HOSTILE_NICK = "ev\x1b[2Jil\x07"
HOSTILE_BODY = "A\x1b]0;TITLE\x07B\x9b31mC\u202eD\x1b[5AE\x00F"
UNICODE_BODY = "你好 👋🏽 שלום עולם ok"


def test_hostile_text_never_reaches_the_terminal_raw() -> None:
    written = io.StringIO()
    output = Vt100_Output(written, lambda: Size(rows=30, columns=120), term="xterm-256color")

    async def script(s: Screen) -> None:
        evil = await s.peer(HOSTILE_NICK)
        await evil.linked_to(s.node.addr)
        evil.node.say(HOSTILE_BODY)
        evil.node.say(UNICODE_BODY)
        # A message with no nick shows its Addr, which the peer also controls.
        async with await trio.open_tcp_stream(LOCAL, int(s.node.addr.rsplit(":", 1)[1])) as raw:
            message = {"ID": "x1", "Addr": "1.2.3.4:5\x1b]2;ADDR\x07", "Body": "from addr"}
            await raw.send_all(json.dumps(message).encode())
            await s.until(lambda: "from addr" in s.log())
        await s.until(lambda: "ok" in s.log())
        s.type(CTRL_D)

    screen = run_screen(script, output=output)
    log = screen.log()
    assert "<ev␛[2Jil␇> A␛]0;TITLE␇B\ufffd31mC\ufffdD␛[5AE␀F" in log
    assert f"<ev␛[2Jil␇> {UNICODE_BODY}" in log
    assert "<1.2.3.4:5␛]2;ADDR␇> from addr" in log
    raw = written.getvalue()
    for forbidden in ("\x07", "\x9b", "\x1b]", "\u202e", "\x00"):
        assert forbidden not in raw, repr(forbidden)
    for kept in ("你", "好", "👋", "שלום", "␛]0;TITLE␇B"):
        assert kept in raw, kept


def test_a_burst_of_messages_is_all_shown() -> None:
    count = 3000  # more than a subscription buffers

    async def script(s: Screen) -> None:
        bob = await s.linked_peer()
        for n in range(count):
            bob.node.say(f"burst {n}")
        await s.until(lambda: f"<bob> burst {count - 1}" in s.log())
        assert sum("<bob> burst" in line for line in s.ui.log_text()) == count
        s.type(CTRL_D)

    run_screen(script)
