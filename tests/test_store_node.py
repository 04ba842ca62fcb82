"""The store fed from real nodes on loopback, the way the engine's store stage will be fed:
every ``Delivered`` event a ``Record``, put to a ``HistoryWriter``, shown once committed."""

from __future__ import annotations

import time
from pathlib import Path

import trio

from tests.helpers import start_node
from whisper import Delivered, Node
from whisper.commands import execute
from whisper.store import History, Record
from whisper.store.export import export
from whisper.store.writer import HistoryWriter

TIMEOUT = 10


class Stored:
    """A node's history and what it released for display."""

    def __init__(self) -> None:
        self.shown: list[Delivered] = []
        self.history: History | None = None
        self._changed = trio.Event()

    async def run(self, node: Node, path: Path, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with History.open(path) as history, node.subscribe() as events:
            self.history = history
            writer = HistoryWriter(history, self._show, lambda text: None)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                task_status.started()
                async for event in events:
                    if type(event) is Delivered:
                        writer.put(Record.of(event, time.time()), event)

    def _show(self, events: list[Delivered]) -> None:
        self.shown.extend(events)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_shown(self, n: int) -> None:
        while len(self.shown) < n:
            await self._changed.wait()


async def attach(nursery: trio.Nursery, node: Node, path: Path) -> Stored:
    stored = Stored()
    await nursery.start(stored.run, node, path)
    return stored


async def test_messages_between_real_nodes_are_stored_before_they_are_shown(nursery, tmp_path):
    a = await start_node(nursery, nick="alice")
    b = await start_node(nursery, nick="bob")
    sa = await attach(nursery, a, tmp_path / "a.sqlite3")
    sb = await attach(nursery, b, tmp_path / "b.sqlite3")
    picture = tmp_path / "cat.gif"
    picture.write_bytes(bytes(range(256)) * 50)
    a.connect(b.addr)
    with trio.fail_after(TIMEOUT):
        a.say("hello bob")
        assert (await execute(a, f"/send '{picture}'")).lines == ["sent cat.gif (12.5 KiB)"]
        await sb.wait_shown(2)
        await sa.wait_shown(2)
    for stored in (sa, sb):  # what was shown is in the file
        for event in stored.shown:
            assert stored.history.find(event.message.id) is not None
    (mine, file_mine) = sa.history.since(0)
    (hello, file_msg) = sb.history.since(0)
    assert mine.own and not hello.own
    assert hello.message == mine.message and hello.message.nick == "alice"
    assert hello.message.fields["Addr"] == a.addr
    assert file_msg.file is not None
    assert (file_msg.file.name, file_msg.file.mime, file_msg.file.size) == (
        "cat.gif",
        "image/gif",
        12800,
    )
    assert "FileContents" not in file_msg.message.fields
    assert file_mine.own and file_mine.message.fields["FileName"] == "cat.gif"
    assert [s.message.body for s in sb.history.search("HELLO")] == ["hello bob"]
    assert export(tmp_path / "b.sqlite3", tmp_path / "b.txt", "text") == 2
    lines = (tmp_path / "b.txt").read_text().splitlines()
    assert lines[0].endswith(" <alice> hello bob")
