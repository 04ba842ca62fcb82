"""The history writer (whisper/store/writer.py): shown means committed, in order, bounded."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio.testing

from tests.store_helpers import record, records
from whisper.store import History
from whisper.store.writer import HistoryWriter


class Screen:
    """What the writer released (shown), and what another connection saw committed then."""

    def __init__(self, path) -> None:
        self.shown: list[int] = []
        self.committed_then: list[tuple[int, int]] = []  # (shown so far, rows in the file)
        self.notices: list[str] = []
        self._reader = sqlite3.connect(path)

    def release(self, tokens: list[int]) -> None:
        self.shown.extend(tokens)
        count = self._reader.execute("SELECT count(*) FROM messages").fetchone()[0]
        self.committed_then.append((len(self.shown), count))

    def notice(self, text: str) -> None:
        self.notices.append(text)


@asynccontextmanager
async def running(path, max_pages: int | None = None, **kw: Any) -> AsyncIterator[tuple]:
    """A history, a screen and a running writer; the writer is cancelled at the end."""
    with History.open(path, max_pages=max_pages) as h:
        screen = Screen(path)
        writer = HistoryWriter(h, screen.release, screen.notice, **kw)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            yield h, screen, writer, nursery
            nursery.cancel_scope.cancel()


async def test_a_message_is_released_only_once_committed(tmp_path):
    async with running(tmp_path / "h") as (_h, screen, writer, _):
        for i, r in enumerate(records(500)):
            assert writer.put(r, i)
            if i % 50 == 0:
                await trio.sleep(0)
        await writer.flush()
        assert screen.shown == list(range(500))
        assert all(rows >= shown for shown, rows in screen.committed_then)
        assert writer.stats.stored == 500
        assert writer.stats.batches < 100  # batched
    assert screen.notices == []


async def test_everything_put_is_committed_when_the_writer_is_cancelled(tmp_path):
    async with running(tmp_path / "h") as (_h, screen, writer, nursery):
        for i, r in enumerate(records(300)):
            writer.put(r, i)
        nursery.cancel_scope.cancel()  # before the writer ran a single batch
    assert screen.shown == list(range(300))
    assert all(rows >= shown for shown, rows in screen.committed_then)


async def test_reads_run_in_the_writers_thread_in_turn(tmp_path):
    async with running(tmp_path / "h") as (h, _screen, writer, _):
        for i, r in enumerate(records(20, "findme")):
            writer.put(r, i)
        await writer.flush()
        assert len(await writer.call(h.search, "findme", 5)) == 5
        await writer.call(h.peer_linked, "10.0.0.1:1", 1.0)
        assert [p.addr for p in await writer.call(h.known_peers)] == ["10.0.0.1:1"]


async def test_a_full_disk_turns_history_off_and_still_shows_everything_in_order(tmp_path):
    path = tmp_path / "h"
    async with running(path, max_pages=40, max_batch=20) as (h, screen, writer, _):
        directly = 0
        for i in range(2000):
            if not writer.put(record(f"message {i} " + "x" * 500), i):
                screen.shown.append(i)  # the caller shows it
                directly += 1
            if i % 20 == 0:
                await writer.flush()
        await writer.flush()
        assert not writer.on
        (notice,) = screen.notices
        assert notice.startswith(f"history is off: history {path}: the disk")
        assert "free some space" in notice
        assert screen.shown == list(range(2000))  # none lost, in order
        assert directly > 1000  # once off, the caller shows them itself
        assert 0 < h.count() < 2000
        assert not writer.put(record("after"), -1)


async def test_a_writer_that_falls_behind_turns_history_off_and_says_so(tmp_path):
    async with running(tmp_path / "h", max_pending=100) as (h, screen, writer, nursery):
        stuck = threading.Event()
        nursery.start_soon(writer.call, stuck.wait)  # a slow disk holds the writer's thread
        await trio.testing.wait_all_tasks_blocked()
        assert writer.put(record("first"), 0)
        await trio.testing.wait_all_tasks_blocked()  # the writer waits for the thread
        taken = [writer.put(record(f"m {i}"), i) for i in range(1, 300)]
        assert not writer.on
        (notice,) = screen.notices
        assert "writing fell behind (100 waiting)" in notice and "restart whisper" in notice
        assert all(taken)  # waiting behind the batch in the thread: released in order
        stuck.set()
        await writer.flush()
        assert screen.shown == list(range(300))
        assert not writer.put(record("later"), 300)
        assert h.count() == 1  # the one batch that got to the thread


async def test_a_bug_in_the_store_turns_history_off_instead_of_crashing(tmp_path, monkeypatch):
    async with running(tmp_path / "h") as (h, screen, writer, _):

        def broken(batch):
            raise ZeroDivisionError("oops")

        monkeypatch.setattr(h, "add_messages", broken)
        writer.put(record("x"), 1)
        await writer.flush()
        assert screen.shown == [1]
        (notice,) = screen.notices
        assert "history is off" in notice and "ZeroDivisionError" in notice
