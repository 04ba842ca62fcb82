"""The history wired into the peer (store/stage.py, store/flags.py): nodes over loopback
with real SQLite files, and real ``whisper`` processes (SIGKILL, locked, damaged, read-only
files, retention, redialling known peers)."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from functools import partial

import httpx
import pytest
import trio
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from tests.helpers import LOCAL, linked, start_node
from tests.proc import Whisper, one_line, run
from tests.store_helpers import read_only, record
from tests.test_tui_app import PAGE_UP, Screen
from tests.webhelpers import AUTH, TOKEN
from whisper import Delivered, Node
from whisper.commands import execute
from whisper.config import Config
from whisper.store import History
from whisper.store.stage import HistoryStage
from whisper.web import WebServer

TIMEOUT = 20
QUIET = ("-host", "127.0.0.1", "-port", "0", "-no-discovery", "-headless")


async def start_stored(nursery: trio.Nursery, path, **kw) -> Node:
    node = Node(Config(host=LOCAL, port=0, **kw))
    stage = HistoryStage(History.open(path))
    stage.attach(node)
    await nursery.start(stage.run, node.run)
    return node


async def test_a_message_is_committed_before_any_front_end_is_shown_it(nursery, tmp_path):
    a = await start_stored(nursery, tmp_path / "a.sqlite3", nick="alice")
    b = await start_stored(nursery, tmp_path / "b.sqlite3", nick="bob")
    a.connect(b.addr)
    await linked(a, b.addr)
    with trio.fail_after(TIMEOUT), b.subscribe() as events, a.subscribe() as mine:
        sent = [a.say(f"hello {i}") for i in range(20)]
        for m in sent:
            for sub, node in ((events, b), (mine, a)):
                event = await sub.receive()
                while type(event) is not Delivered:
                    event = await sub.receive()
                assert event.message.id == m.id
                # shown now: already in the file, read through a connection of our own
                assert node.history.history.find(m.id) is not None
    reply = await execute(b, "/search hello 7")
    assert reply.lines[0] == "1 found, newest first:"
    assert reply.lines[1].endswith(" - <alice> hello 7")
    assert [s.message.id for s in reply.data] == [sent[7].id]
    assert (await execute(b, "/search nowhere")).lines == ["nothing in the history holds 'nowhere'"]
    out = tmp_path / "log.jsonl"
    assert (await execute(b, f"/export {out}")).lines == [f"exported 20 messages to {out}"]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["Body"] if "Body" in r else r["message"]["Body"] for r in rows] == [
        f"hello {i}" for i in range(20)
    ]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "b.sqlite3").stat().st_mode) == 0o600
    again = await execute(b, f"/export {out}")
    assert again.lines == [f"not exported: {out} exists (give a new file)"]
    text = tmp_path / "log.txt"
    await execute(b, f"/export {text}")
    assert text.read_text().splitlines()[0].endswith("<alice> hello 0")


async def test_search_and_export_say_when_history_is_off(nursery):
    node = Node(Config(host=LOCAL, port=0))
    await nursery.start(node.run)
    for line in ("/search x", "/export /tmp/nowhere.jsonl"):
        assert (await execute(node, line)).lines[0].startswith("history is off")
    assert (await execute(node, "/search")).lines == ["usage: /search TEXT"]


async def test_a_peer_killed_with_sigkill_lost_nothing_shown_and_redials_by_itself(
    nursery, tmp_path
):
    a_db, b_db = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    with trio.fail_after(TIMEOUT * 2):
        a = await Whisper(*QUIET, "-nick", "alice", "-history", str(a_db)).start(nursery)
        b = Whisper(*QUIET, "-nick", "bob", "-history", str(b_db), "-peer", a.addr)
        await b.start(nursery)
        await b.wait_line("stderr", f"connected to {a.addr}")
        await b.type(*(f"line {i}" for i in range(50)))
        await a.wait_line("stdout", "^bob: line 49$")
        shown = [line.removeprefix("bob: ") for line in a.stdout if line.startswith("bob: ")]
        await a.stop(signal.SIGKILL)
        await b.stop(signal.SIGKILL)
        with History.open(a_db) as history:  # the receiver: everything it printed
            bodies = [s.message.body for s in history.since(0, 1000)]
            assert bodies == shown == [f"line {i}" for i in range(50)]
        with History.open(b_db) as history:  # the sender: its own, and the peer it dialled
            assert [s.message.body for s in history.since(0, 1000) if s.own] == shown
            assert [p.addr for p in history.known_peers()] == [a.addr]
        # both restarted, bob without -peer: he dials the peer he knew
        port = a.addr.rsplit(":", 1)[1]
        args = (*QUIET[:2], "-port", port, *QUIET[4:])
        a2 = await Whisper(*args, "-nick", "alice", "-history", str(a_db)).start(nursery)
        b2 = await Whisper(*QUIET, "-nick", "bob", "-history", str(b_db)).start(nursery)
        await b2.wait_line("stderr", f"connected to {a.addr}")
        await b2.type("after the restart")
        await a2.wait_line("stdout", "^bob: after the restart$")
        assert not [line for line in a2.stdout if "line 3" in line]  # replayed: seen, not new


async def relays_with_history_off(nursery, warning: str, *args: str) -> None:
    """A peer whose history cannot be used says so in one line, and still relays."""
    b = await Whisper(*QUIET, *args).start(nursery)
    warnings = [line for line in b.stderr if "history is off" in line]
    assert len(warnings) == 1 and warning in warnings[0], b.stderr
    c = await Whisper(*QUIET, "-no-history", "-nick", "carol", "-peer", b.addr).start(nursery)
    await c.wait_line("stderr", f"connected to {b.addr}")
    await c.type("still relayed")
    await b.wait_line("stdout", "^carol: still relayed$")
    assert (
        await _search(b)
    ) == "history is off (-no-history, or it could not be used: see the warning)"


async def _search(w: Whisper) -> str:
    await w.type("/search relayed")
    return await w.wait_line("stderr", "^history is off|found")


async def test_a_history_in_use_by_another_whisper(nursery, tmp_path):
    path = tmp_path / "h.sqlite3"
    with trio.fail_after(TIMEOUT):
        await Whisper(*QUIET, "-history", str(path)).start(nursery)
        await relays_with_history_off(nursery, "in use by another whisper", "-history", str(path))


async def test_a_damaged_history(nursery, tmp_path):
    path = tmp_path / "h.sqlite3"
    path.write_bytes(b"this is not a database at all" * 200)
    with trio.fail_after(TIMEOUT):
        await relays_with_history_off(nursery, "damaged", "-history", str(path))
    assert path.read_bytes().startswith(b"this is not")  # left as it was


async def test_a_read_only_history(nursery, tmp_path):
    path = tmp_path / "h.sqlite3"
    History.open(path).close()
    with read_only(path), trio.fail_after(TIMEOUT):
        await relays_with_history_off(nursery, "cannot be written", "-history", str(path))


async def test_history_days_prunes_old_messages_on_start(nursery, tmp_path):
    path = tmp_path / "h.sqlite3"
    now = time.time()
    with History.open(path) as history:
        history.add_messages([record("old", at=now - 10 * 86400), record("new", at=now - 60)])
    with trio.fail_after(TIMEOUT):
        w = await Whisper(*QUIET, "-history", str(path), "-history-days", "7").start(nursery)
        await w.type("/search old", "/search new")
        await w.wait_line("stderr", "<.*> new$")
        assert "nothing in the history holds 'old'" in w.stderr
        await w.stop()
    with History.open(path) as history:
        assert [s.message.body for s in history.since(0)] == ["new"]


async def test_no_history_writes_no_file(nursery, tmp_path):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    with trio.fail_after(TIMEOUT):
        w = await Whisper(*QUIET, "-no-history").start(nursery, env=env)
        await w.type("/search x")
        await w.wait_line("stderr", "^history is off")
    kept = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    assert kept == ["identity.key"]  # its key (extension 13), and no history file


async def test_a_full_disk_turns_history_off_and_the_node_keeps_relaying(nursery, tmp_path):
    a = Node(Config(host=LOCAL, port=0, nick="alice"))
    b = Node(Config(host=LOCAL, port=0, nick="bob"))
    await nursery.start(a.run)
    full = HistoryStage(History.open(tmp_path / "b.sqlite3", max_pages=40))
    full.attach(b)
    await nursery.start(full.run, b.run)
    a.connect(b.addr)
    await linked(a, b.addr)
    big = "x" * 2000
    with trio.fail_after(TIMEOUT), b.subscribe() as events:
        sent = [a.say(f"{i} {big}") for i in range(100)]
        shown, notices = [], []
        while len(shown) < len(sent):
            event = await events.receive()
            if type(event) is Delivered:
                shown.append(event.message.id)
            elif "history is off" in getattr(event, "text", ""):
                notices.append(event.text)
    assert shown == [m.id for m in sent]  # every one shown, in order, stored or not
    assert len(notices) == 1 and "full" in notices[0], notices
    assert not full.on
    assert (await execute(b, "/search x")).lines[0].startswith("history is off")


async def test_the_web_api_searches_the_history(nursery, tmp_path):
    node = await start_stored(nursery, tmp_path / "h.sqlite3", nick="alice")
    server = WebServer(node, "127.0.0.1", 0, token=TOKEN)
    await nursery.start(server.run)
    url = f"http://127.0.0.1:{server.port}"
    with trio.fail_after(TIMEOUT), node.subscribe() as events:
        for body in ("red apple", "green apple", "red car"):
            node.say(body)
        for _ in range(3):
            while type(await events.receive()) is not Delivered:
                pass
    async with httpx.AsyncClient(base_url=url, headers=AUTH) as client:
        r = await client.get("/api/search", params={"q": "apple"})
        assert r.status_code == 200
        found = r.json()["messages"]
        assert [m["Body"] for m in found] == ["green apple", "red apple"]
        assert found[0]["Nick"] == "alice" and found[0]["Own"] and found[0]["Channel"] is None
        older = await client.get("/api/search", params={"q": "apple", "before": found[0]["Seq"]})
        assert [m["Body"] for m in older.json()["messages"]] == ["red apple"]
        assert (await client.get("/api/search", params={"q": " "})).status_code == 400
    plain = await start_node(nursery)
    off = WebServer(plain, "127.0.0.1", 0, token=TOKEN)
    await nursery.start(off.run)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{off.port}", headers=AUTH) as c:
        r = await c.get("/api/search", params={"q": "apple"})
        assert r.status_code == 503 and "history is off" in r.json()["error"]


def run_stored_screen(path, messages: int, script) -> Screen:
    """The terminal UI of a node whose history holds ``messages`` from bob: old 0, old 1 ..."""
    with History.open(path) as history:
        history.add_messages([record(f"old {i}", nick="bob") for i in range(messages)])
    with create_pipe_input() as pipe:
        screen = Screen(pipe, DummyOutput(), None)
        stage = HistoryStage(History.open(path))
        stage.attach(screen.node)
        screen.node.run = partial(stage.run, screen.node.run)
        screen.run(script)
    return screen


def test_the_terminal_ui_opens_with_the_last_messages_marked_as_earlier(tmp_path):
    async def script(s: Screen) -> None:
        await s.until(lambda: "end of the earlier messages" in s.log())
        s.type("/quit\r")

    log = run_stored_screen(tmp_path / "h.sqlite3", 60, script).ui.log_text()
    first = next(i for i, line in enumerate(log) if "earlier: the last 50 messages" in line)
    shown = [line for line in log[first:] if "<bob>" in line]
    assert len(shown) == 50 and shown[0].endswith("<bob> old 10") and "old 59" in shown[-1]
    assert all("[history]" in line for line in shown)


def test_page_up_past_the_top_loads_older_messages_from_the_history(tmp_path):
    async def page_up_until(s: Screen, done) -> None:
        while not done():
            view = s.ui.scrollback.view, len(s.ui.scrollback.lines), s.ui.status_text()
            s.type(PAGE_UP)  # the first presses scroll; the one at the top loads
            await s.until(
                lambda view=view: (
                    done()
                    or (s.ui.scrollback.view, len(s.ui.scrollback.lines), s.ui.status_text())
                    != view
                )
            )

    async def script(s: Screen) -> None:
        await s.until(lambda: "end of the earlier messages" in s.log())
        await page_up_until(s, lambda: "earlier: 50 more messages" in s.log())
        assert s.ui.scrollback.view is not None  # moved up into what was loaded
        await page_up_until(s, lambda: "earlier: 20 more messages" in s.log())
        await page_up_until(s, lambda: "no older messages" in s.ui.status_text())
        s.type("/quit\r")

    screen = run_stored_screen(tmp_path / "h.sqlite3", 120, script)
    log = screen.ui.log_text()
    shown = [line.split("<bob> ")[1] for line in log if "<bob>" in line]
    assert shown == [f"old {i}" for i in range(120)]  # each once, in order
    headers = [i for i, line in enumerate(log) if "-- earlier:" in line]
    assert [log[i].split("-- earlier: ")[1] for i in headers] == [
        "20 more messages of the history --",
        "50 more messages of the history --",
        "the last 50 messages of the history --",
    ]
    assert all("[history]" in line for line in log if "<bob>" in line)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("-history-days", "0"), "-history-days must be a positive number of days"),
        (("-history-days", "nan"), "-history-days must be a positive number of days"),
        (("-history", "x.sqlite3", "-no-history"), "-history and -no-history: choose one"),
    ],
)
async def test_bad_history_flags_are_one_line_usage_errors(args, error):
    code, _, err = await run(*QUIET, *args)
    assert code == 2 and one_line(err) and error in err, err
