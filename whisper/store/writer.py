"""The trio side of the history: one writer task that commits batches off the event loop.

Rules:
- Shown means committed.  ``put(record, token)`` never blocks: the record joins the batch
  that is waiting, and its ``token`` (whatever the caller shows: a display event) is handed
  to ``release`` only once that batch is committed.  So a SIGKILL loses nothing that was
  shown.  ``put_many(item, tokens)`` does the same for one item that stands for several
  tokens: the stage puts ``(time, events)`` once per engine batch and ``write`` is
  ``History.add_shown``, so the event loop's part is a few list appends per engine batch,
  and every row is made in the thread, by SQLite, with the GIL released.
- Group commit: while one batch is written in the thread, the next one gathers, so one
  transaction carries thousands of messages at the relay's full rate.  The other choice,
  a stage that commits each received chunk before going on, would hold up the relay
  itself for every commit; this one holds up only the display.  Measured: see
  ``bench/bench_history.py`` (writer and relay sections).
- One writer: every call into ``History`` runs in ``trio.to_thread.run_sync`` under one
  ``CapacityLimiter(1)``: the batches, and whatever the caller runs through ``call`` (a page,
  a search, a known peer).  The event loop never waits for SQLite.
- Every token put is released exactly once, in the order put.
- Bounded, and never silent: at most ``max_pending`` records wait besides the batch being
  written.  Past that, or when a commit fails (``HistoryError``: the disk is full, the file
  became read-only, another program held its lock past the busy timeout, it is damaged),
  history is off for the rest of the run: ``notice`` gets one line that says so and why,
  what was waiting is released unstored (still in order, after the batch in the thread),
  and ``put`` returns False from then on: the caller shows the event itself.
- ``flush()`` returns once everything put before it is released (committed, or history is
  off).  On cancellation ``run`` first commits what is waiting, shielded, for at most
  ``FLUSH_TIMEOUT`` seconds; what is left then is released unstored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import trio

from .db import History
from .errors import HistoryBehind, HistoryError, HistoryUnavailable
from .records import Record

T = TypeVar("T")

#: Records waiting (besides the batch being written) before history is switched off.
MAX_PENDING = 100_000
#: Records written in one transaction at most.
MAX_BATCH = 10_000
FLUSH_TIMEOUT = 5.0

log = logging.getLogger("whisper.store")


@dataclass
class WriterStats:
    batches: int = 0
    stored: int = 0  # new rows (a message stored twice is one)
    largest_batch: int = 0
    longest_commit: float = 0.0  # seconds, trio clock


class HistoryWriter(Generic[T]):
    def __init__(
        self,
        history: History,
        release: Callable[[list[T]], None],
        notice: Callable[[str], None],
        *,
        write: Callable[[list[Any]], int] | None = None,
        max_pending: int = MAX_PENDING,
        max_batch: int = MAX_BATCH,
    ) -> None:
        """``write`` stores a list of what was put (default ``history.add_messages``)."""
        self.history = history
        self._write = write
        self.on = True
        self.error: HistoryError | None = None
        self.stats = WriterStats()
        self.max_pending = max_pending
        self.max_batch = max_batch
        self._release_to = release
        self._notice = notice
        self._items: list[Any] = []  # what was put, for ``write``
        self._counts: list[int] = []  # the tokens of each item
        self._waiting = 0  # sum(self._counts)
        self._tokens: list[T] = []  # while on: one per record; once off: passing through
        self._busy = False  # a batch is in the thread
        self._wake = trio.Event()
        self._progress = trio.Event()
        self._limiter = trio.CapacityLimiter(1)
        self._put = 0
        self._released = 0

    # -- the event loop's side -------------------------------------------------------------

    def put(self, record: Record, token: T) -> bool:
        """Store ``record``, then release ``token``.  False: history is off, and nothing
        is waiting to be released before it: show it now."""
        return self.put_many(record, [token])

    def put_many(self, item: Any, tokens: list[T]) -> bool:
        """Store ``item`` (what ``write`` takes), then release ``tokens``; as ``put``."""
        n = len(tokens)
        if self.on and self._waiting + n > self.max_pending:
            self._switch_off(
                HistoryBehind(self.history.path, f"writing fell behind ({self._waiting:,} waiting)")
            )
            if not self._busy:
                self._release(self._take_tokens())
        if not self.on:
            if not (self._busy or self._tokens):
                return False
            self._tokens.extend(tokens)
        else:
            self._items.append(item)
            self._counts.append(n)
            self._waiting += n
            self._tokens.extend(tokens)
            self._wake.set()
        self._put += n
        return True

    @property
    def waiting(self) -> int:
        """Tokens waiting for the next batch (not counting the one being written)."""
        return self._waiting

    async def flush(self) -> None:
        """Wait until every token put so far is released (``run`` must be running)."""
        target = self._put
        while self._released < target:
            await self._progress.wait()

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` (a ``History`` method) in the writer's thread, in turn."""
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    # -- the writer task -------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while self.on:
                await self._wake.wait()
                self._wake = trio.Event()
                while self._items:
                    await self._commit_next()
        finally:
            # Cancelled: what is waiting is committed first (each commit is shielded; the
            # deadline is checked between batches, since a commit in a thread cannot stop).
            deadline = trio.current_time() + FLUSH_TIMEOUT
            while self.on and self._items and trio.current_time() < deadline:
                await self._commit_next()
            self._clear()
            self._release(self._take_tokens())

    async def _commit_next(self) -> None:
        counts = self._counts
        k, n = 1, counts[0]  # whole items, at least one, up to max_batch tokens
        while k < len(counts) and n + counts[k] <= self.max_batch:
            n += counts[k]
            k += 1
        items, tokens = self._items[:k], self._tokens[:n]
        del self._items[:k], self._counts[:k], self._tokens[:n]
        self._waiting -= n
        self._busy = True
        started = trio.current_time()
        try:
            with trio.CancelScope(shield=True):  # the thread cannot be stopped anyway
                write = self._write or self.history.add_messages
                added = await trio.to_thread.run_sync(write, items, limiter=self._limiter)
        except HistoryError as exc:
            self._switch_off(exc)
        except Exception as exc:  # a bug must not take the relay down with it
            log.exception("history writer failed")
            self._switch_off(HistoryUnavailable(self.history.path, f"failed ({exc!r})"))
        else:
            stats = self.stats
            stats.batches += 1
            stats.stored += added
            stats.largest_batch = max(stats.largest_batch, n)
            stats.longest_commit = max(stats.longest_commit, trio.current_time() - started)
        finally:
            self._busy = False
        self._release(tokens)
        if not self.on:
            self._release(self._take_tokens())

    # -- helpers ---------------------------------------------------------------------------

    def _switch_off(self, error: HistoryError) -> None:
        if not self.on:
            return
        self.on = False
        self.error = error
        self._clear()
        self._wake.set()  # let run() end
        self._notice(f"history is off: {error}")

    def _clear(self) -> None:
        self._items.clear()
        self._counts.clear()
        self._waiting = 0

    def _take_tokens(self) -> list[T]:
        tokens, self._tokens = self._tokens, []
        return tokens

    def _release(self, tokens: list[T]) -> None:
        if tokens:
            self._released += len(tokens)
            self._release_to(tokens)
        self._progress.set()
        self._progress = trio.Event()
