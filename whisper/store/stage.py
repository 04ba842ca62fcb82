"""The history store wired into a running node (issue 12): what is shown is committed first.

Rules:
- ``HistoryStage.attach(node)`` plugs in at the node's display (``Node.holds``), not in the
  relay: relaying never waits for SQLite.  The event loop puts each engine batch's
  ``Delivered`` events as they are, with the time, to the ``HistoryWriter`` (``put_many``);
  the writer's thread makes the rows (``History.add_shown``), and the events are published
  to the front ends only when the writer releases them, after their batch is committed
  (writer.py: "shown means committed").  Status events are published at once, so one may
  be shown before a message that came just before it and is still being committed (at
  most a commit's time, milliseconds).
- History off (the writer switched it off: disk full, file damaged, locked past the busy
  timeout, fell behind): one warning notice says so and why, and from then on events are
  shown as they come; the node keeps relaying.
- Numbers: once a front end sets ``numbered`` (the web API, whose cursor is the store's
  ``seq``), each message is shown carrying its ``seq`` (``Delivered.seq``), learnt in the
  commit; until then no event is rebuilt (that costs the event loop a tuple a message).
- Known peers: every ``PeerLinked`` is recorded with its time (the writer's thread, in turn).
  ``attach`` with no configured ``-peer`` dials the ``REDIAL`` most recently successful ones,
  and fills the backlog (extension 11) from the store, so both survive a restart.
- Retention (``days``): messages older than that are pruned when the node starts and every
  ``PRUNE_EVERY`` seconds after.
- Nick pins (extension 13): loaded on attach, saved while running and when the node stops
  (``pins.py``).
- Searches, pages and exports run in the writer's thread too (``writer.call``); an export
  reads the file through its own connection (export.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from .. import codec
from ..events import Delivered, Event, Notice, PeerLinked
from . import pins
from .db import History
from .errors import HistoryError
from .export import FORMATS, export
from .records import Stored
from .writer import HistoryWriter

if TYPE_CHECKING:
    from ..node import Node

#: Known peers dialled on start when no ``-peer`` is given.
REDIAL = 8
#: Seconds between retention prunes.
PRUNE_EVERY = 3600.0
DAY = 86400.0

log = logging.getLogger("whisper.store")


class HistoryStage:
    def __init__(
        self,
        history: History,
        *,
        days: float | None = None,
        redial: int = REDIAL,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.history = history
        self.days = days
        self.redial = redial
        self.wall_clock = wall_clock
        self.numbered = False
        self._seqs: list[int] = []  # the seqs of the batch just committed, when numbered
        self.writer: HistoryWriter[Delivered] = HistoryWriter(
            history, self._release, self._off, write=self._write
        )
        self._node: Node | None = None
        self._nursery: trio.Nursery | None = None
        self._pins: pins.PinSaver | None = None

    @property
    def on(self) -> bool:
        return self.writer.on

    # -- wiring --------------------------------------------------------------------------

    def attach(self, node: Node) -> None:
        """Hold the node's messages until committed; redial known peers; seed the backlog.
        Synchronous (runs before the node starts)."""
        self._node = node
        node.holds.append(self.hold)
        node.history = self
        now = self.wall_clock()
        if self.days is not None:
            self.history.prune(now - self.days * DAY)
        if node.identity is not None:  # extension 13: the pins outlive the process
            pins.load(self.history, node.identity.pins)
            self._pins = pins.PinSaver(self.history, node.identity.pins)
        config = node.config
        if not config.peers and self.redial > 0:
            config.peers = [p.addr for p in self.history.known_peers(self.redial)]

    async def run(
        self,
        run_node: Callable[..., Awaitable[None]],
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """``node.run`` with the writer beside it; the history is closed when both end."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self.writer.run)
                await self._seed_backlog()
                if self.days is not None:
                    nursery.start_soon(self._prune_every)
                if self._pins is not None:
                    nursery.start_soon(self._pins.run, self.writer)
                addr = await nursery.start(run_node)
                task_status.started(addr)
        finally:
            self._nursery = None
            if self._pins is not None:
                self._pins.save_now()
            self.history.close()

    async def _seed_backlog(self) -> None:
        """The backlog (extension 11) starts with the newest stored messages it may replay;
        they are marked seen, so a peer replaying them back is not shown them as new."""
        assert self._node is not None
        engine = self._node.engine
        entries = self._node.config.backlog.entries
        if entries <= 0:
            return
        try:
            kept = await self.writer.call(
                self.history.recent_for_backlog, entries, engine._replay_age(), self.wall_clock()
            )
        except HistoryError as exc:
            log.warning("history: %s", exc)
            return
        engine.backlog.extend([(s.message, len(codec.encode(s.message))) for s in kept])
        now = trio.current_time()
        for s in kept:
            engine.seen.add(s.message.id, now)

    # -- the node's display --------------------------------------------------------------

    def hold(self, events: list[Event]) -> list[Event]:
        """What to show now; the rest is shown by ``_release`` once committed."""
        if not events:
            return events
        writer = self.writer
        now = self.wall_clock()
        delivered = [e for e in events if type(e) is Delivered]
        if len(delivered) == len(events):  # a relay's batch: messages only
            return [] if writer.put_many((now, delivered), delivered) else events
        shown: list[Event] = []
        for event in events:
            if type(event) is Delivered:
                if not writer.put_many((now, [event]), [event]):
                    shown.append(event)
            else:
                if type(event) is PeerLinked and writer.on:
                    self._spawn(self.history.peer_linked, event.addr, now)
                shown.append(event)
        return shown

    def _write(self, items: list[tuple[float, list[Delivered]]]) -> int:
        """In the writer's thread: store a batch, and learn its numbers if wanted."""
        if not self.numbered:
            return self.history.add_shown(items)
        self._seqs.clear()
        return self.history.add_shown(items, self._seqs)

    def _release(self, events: list[Delivered]) -> None:
        seqs, self._seqs = self._seqs, []
        if len(seqs) == len(events):  # committed, numbered: else shown as they are
            events = list(map(_numbered, events, seqs))
        if self._node is not None:
            self._node.publish_now(events)  # type: ignore[arg-type]

    def _off(self, text: str) -> None:
        if self._node is not None:
            self._node.publish_now([Notice(f"{text}; messages are still relayed", True)])

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(self._call_quietly, fn, *args)

    async def _call_quietly(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            await self.writer.call(fn, *args)
        except HistoryError as exc:
            log.warning("history: %s", exc)

    async def _prune_every(self) -> None:
        assert self.days is not None
        while True:
            await trio.sleep(PRUNE_EVERY)
            await self._call_quietly(self.history.prune, self.wall_clock() - self.days * DAY)

    # -- what commands and the API ask ---------------------------------------------------

    async def search(self, text: str, limit: int = 50, before: int | None = None) -> list[Stored]:
        return await self.writer.call(self.history.search, text, limit, before)

    async def page(self, before: int | None = None, limit: int = 100) -> list[Stored]:
        return await self.writer.call(self.history.page, before, limit)

    async def since(self, after: int = 0, limit: int = 100) -> list[Stored]:
        return await self.writer.call(self.history.since, after, limit)

    async def last_seq(self) -> int:
        """The newest stored ``seq``, once what is being committed is (0: none)."""
        await self.writer.flush()
        return await self.writer.call(self.history.last_seq)

    async def export(self, path: Path, fmt: str | None = None) -> int:
        """Write the log to a new file ``path``: text for ``.txt`` or ``.log``, else JSON
        lines.  Waits for what is being committed first."""
        if fmt is None:
            fmt = "text" if path.suffix.lower() in (".txt", ".log") else "jsonl"
        assert fmt in FORMATS
        await self.writer.flush()
        return await self.writer.call(export, self.history.path, path, fmt)


_tuple = tuple.__new__  # Delivered(...) without its Python-level __new__: once per message


def _numbered(event: Delivered, seq: int) -> Delivered:
    return _tuple(Delivered, (*event[:7], seq))


def result_line(s: Stored) -> str:
    """A search result: time, channel, nick, text (not cleaned for any display)."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.received_at))
    channel = f"#{s.channel}" if s.channel is not None else "-"
    return f"{when} {channel} <{s.message.sender}> {s.message.body}"
