"""One trio task that reads every incoming connection: a wake-up serves every socket ready.

Rules:
- Each incoming connection keeps its own task and lifetime (``node.py``); only the reading
  is shared.  ``watch(fd, on_data)`` puts the connection's non-blocking socket in one
  ``select.epoll`` set of our own and returns when its reading stops: ``on_data`` returned
  False, or the socket reached EOF (``on_data(b"")`` was called) or failed (``False`` is
  returned, ``on_data`` not called).  The socket leaves the set when ``watch`` returns,
  however it returns (cancelled too), before its owner can close it.
- ``run`` waits for the set's epoll descriptor to become readable (its one trio wake-up and
  checkpoint), then reads each ready socket once, up to ``RECEIVE_BYTES``, and hands the
  chunk to its ``on_data`` synchronously, in the order the kernel reported them.  When a
  flood brings a copy of a message on every connection at once, they cost one wake-up, not
  one each (one task per connection woke once per chunk: trio's scheduling, an ``epoll``
  re-arm and a read that found nothing, for every copy).  Each socket is read at most once
  per round, so one busy connection never starves the others, and the round ends at a
  checkpoint, so the other tasks run between rounds.
- A socket whose ``watch`` ended during a round (the connection was dropped by another's
  chunk) is not read again in that round.  A chunk read is always handed to ``on_data``,
  even when the watch is being cancelled at that moment: nothing read is lost.
"""

from __future__ import annotations

import contextlib
import os
import select
from collections.abc import Callable
from dataclasses import dataclass

import trio

RECEIVE_BYTES = 64 * 1024
READY_AT_ONCE = 256  # sockets read in one round at most; the rest are ready next round


@dataclass
class _Watch:
    on_data: Callable[[bytes], bool]
    done: trio.Event
    ok: bool = True


class Readers:
    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._watches: dict[int, _Watch] = {}

    def close(self) -> None:
        self._epoll.close()

    async def watch(self, fd: int, on_data: Callable[[bytes], bool]) -> bool:
        """Read ``fd`` until ``on_data`` says stop (True) or it ends or fails (False)."""
        watch = _Watch(on_data, trio.Event())
        self._watches[fd] = watch
        self._epoll.register(fd, select.EPOLLIN)
        try:
            await watch.done.wait()
        finally:
            self._forget(fd, watch)
        return watch.ok

    def _forget(self, fd: int, watch: _Watch) -> None:
        if self._watches.get(fd) is watch:
            del self._watches[fd]
            with contextlib.suppress(OSError):  # closed already: the kernel dropped it
                self._epoll.unregister(fd)

    async def run(self) -> None:
        """Serve every watched socket until cancelled."""
        epoll, watches = self._epoll, self._watches
        while True:
            await trio.lowlevel.wait_readable(epoll.fileno())
            for fd, _ in epoll.poll(0, READY_AT_ONCE):
                watch = watches.get(fd)
                if watch is None:  # its watch ended earlier in this round
                    continue
                try:
                    data = os.read(fd, RECEIVE_BYTES)
                except BlockingIOError:
                    continue
                except OSError:
                    watch.ok = False
                    self._stop(fd, watch)
                    continue
                if not watch.on_data(data) or not data:
                    watch.ok = bool(data)
                    self._stop(fd, watch)

    def _stop(self, fd: int, watch: _Watch) -> None:
        self._forget(fd, watch)
        watch.done.set()
