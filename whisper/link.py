"""One outgoing link's trio task: dial, write what the engine has for it, say how it went.

Rules (the decisions are the engine's, ``engine/links.py``; this is the I/O around them):
- One task per link, started on the engine's ``Dial`` and stopped by ``close`` (its
  ``CloseLink``).  It knows its ``Peer`` (the engine's handle) and a ``LinkHost`` (the
  node) to report to, nothing else: not the peer table, not the other links.
- It dials (``connect_timeout``), sets ``TCP_NODELAY``, reports ``link_connected``, then
  writes whatever ``data_to_send`` hands it (the backlog replay first, then queued
  batches), sleeping until ``wake`` when there is nothing.  Nothing is written before
  ``link_connected``.  Chat messages are safe for every peer, so they are not held back
  for the capability banner (``engine/hello.py``): the first ``BANNER_MAX`` bytes the peer
  writes are parsed as one, and a banner is reported (``link_speaks``) when it arrives;
  only then may payloads without ``Body`` be sent.  A Go peer writes none: never.
- A write that makes no progress (not one ``SEND_CHUNK``) for ``stall_timeout`` means the
  peer has stalled: the link is dropped and retried later like any failure, reported as a
  stall (a peer that keeps stalling is given up on, ``PeerTable.failed``).  A slow peer
  that keeps reading is not stalled, however long a batch or a backlog replay takes it.
- ``wake`` (the engine's ``Flush``) writes at once, from the caller, when the task is idle
  (connected, nothing being written, asleep until woken): what ``data_to_send`` hands out
  goes to the socket without blocking (``os.write`` on its non-blocking descriptor), so a
  message the kernel takes whole costs one write and no wake-up of the task.  Whatever the
  kernel does not take (a full buffer), or an error, goes to the task, woken: it writes the
  rest first, under the stall timeout, and reports a broken link as before.  Bytes are never
  reordered: only the task or ``wake`` writes, never both at once.
- Whispernet connections are one-way: anything the peer sends back is read and discarded,
  and its EOF tells us the link is gone.  Two-way links (``engine/twoway.py``): when we
  cannot be dialled and the banner names ``twoway``, what follows the banner is handed to
  the host's reader (``link_reverse``) as an accepted connection's bytes; a link the engine
  writes on a connection its peer opened (``reverse``) is given that stream, never dials
  and ends with it.
- After a failure it reports ``link_failed``; the engine answers with ``Retry`` (the node
  sets ``retry_at``) or stops the task.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Protocol

import trio

from .addr import parse_hostport
from .engine.hello import BANNER_MAX, parse_banner
from .events import CLEAN_CLOSE
from .peers import CONNECT_TIMEOUT, SEND_STALL_TIMEOUT, ConnectionConfig, Peer

RECEIVE_BYTES = 64 * 1024  # what a two-way link's peer writes back is read in such chunks
#: Progress is measured in writes of this size: a slow peer that keeps reading is not stalled.
SEND_CHUNK = 64 * 1024

log = logging.getLogger("whisper.link")


class LinkHost(Protocol):
    def link_connected(self, link: Peer, caps: frozenset[str] = ...) -> None: ...
    def link_speaks(self, link: Peer, caps: frozenset[str]) -> None: ...
    def data_to_send(self, link: Peer) -> bytes: ...
    def link_failed(self, link: Peer, error: str, *, stalled: bool) -> None: ...
    def link_redial(self, link: Peer) -> None: ...
    def link_reverse(self, link: Peer, caps: frozenset[str]) -> Callable[[bytes], None] | None: ...


class Stalled(str):
    """Why a write failed, when it was a stall (no progress for the stall timeout)."""


class OutgoingLink:
    def __init__(
        self,
        link: Peer,
        host: LinkHost,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        stall_timeout: float = SEND_STALL_TIMEOUT,
        stream: trio.SocketStream | None = None,
    ) -> None:
        self.link = link
        self._stream = stream  # a two-way link: the connection its peer opened
        self.addr = link.addr
        self.retry_at: float | None = None  # set by the node on the engine's Retry
        self._host = host
        self._connect_timeout = connect_timeout
        self._stall_timeout = stall_timeout
        self._wake: trio.Event | None = None
        self._pumping = False
        self._fd = -1  # the connected socket's descriptor while the pump runs
        self._rest = b""  # what ``wake`` wrote in part: the task writes it first
        self._cancel = trio.CancelScope()
        self.batches_sent = 0

    def wake(self) -> None:
        """There is something to send: write it now if the task is idle, else wake it."""
        waiting = self._wake
        if waiting is None or waiting.is_set():
            return  # writing, woken already, or not connected: it takes the data itself
        if self._fd >= 0:
            self._write_through(waiting)
        else:
            waiting.set()

    def _write_through(self, waiting: trio.Event) -> None:
        host, link, fd = self._host, self.link, self._fd
        while data := host.data_to_send(link):
            try:
                written = os.write(fd, data)
            except BlockingIOError:
                written = 0
            except OSError:  # broken: the task's own write says how, and reports it
                written = 0
            self.batches_sent += 1
            if written < len(data):
                self._rest = data[written:]
                waiting.set()
                return

    def close(self) -> None:
        self._cancel.cancel()

    @property
    def busy(self) -> bool:
        """Connected and writing, or woken to write (a goodbye is on its way)."""
        return self._pumping and (self._wake is None or self._wake.is_set())

    async def run(self) -> None:
        """Dial, send, redial; return when the engine gives up or the link is closed."""
        with self._cancel:
            if self._stream is not None:  # two-way: no dial, no redial
                error = await self._pump(self._stream)
                self._host.link_failed(self.link, error, stalled=isinstance(error, Stalled))
                return
            while True:
                error = await self._connect_and_pump()
                self.retry_at = None
                self._host.link_failed(self.link, error, stalled=isinstance(error, Stalled))
                if self.retry_at is None:
                    return
                await trio.sleep_until(self.retry_at)
                self._host.link_redial(self.link)

    async def _connect_and_pump(self) -> str:
        host, port = parse_hostport(self.addr)
        try:
            with trio.fail_after(self._connect_timeout):
                stream = await trio.open_tcp_stream(host, port)
        except trio.TooSlowError:
            return f"no answer within {self._connect_timeout:.0f}s"
        except OSError as exc:
            return exc.strerror or str(exc)
        except ValueError as exc:  # a name the IDNA codec or getaddrinfo refuses: "..", NUL
            return f"not a usable host name: {exc}"
        async with stream:
            stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
            self._host.link_connected(self.link)
            return await self._session(stream)

    async def _session(self, stream: trio.SocketStream) -> str:
        """Send until the link breaks; return why it did."""
        reason = "connection broken"

        async def watch_eof() -> None:
            nonlocal reason
            first: bytes | None = b""  # the start of what the peer writes: a banner?
            reader: Callable[[bytes], None] | None = None  # two-way: the rest is a stream
            caps: frozenset[str] | None = None
            try:
                while True:
                    try:
                        data = await stream.receive_some(RECEIVE_BYTES)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        return  # the pump sees the same error on its next send
                    if not data:
                        reason = CLEAN_CLOSE
                        nursery.cancel_scope.cancel()
                        return
                    if reader is not None:
                        reader(data)
                    elif first is None and caps:  # written back: did we ask for that?
                        reader = self._host.link_reverse(self.link, caps)
                        if reader is not None:
                            reader(data)
                    elif first is not None and len(first) < BANNER_MAX:
                        first += data
                        caps = parse_banner(first[:BANNER_MAX])
                        if caps is not None:
                            rest, first = first.partition(b"\n")[2], None
                            if caps:
                                self._host.link_speaks(self.link, caps)
                            if caps and rest:
                                reader = self._host.link_reverse(self.link, caps)
                                if reader is not None:
                                    reader(rest)
            finally:
                if reader is not None:
                    reader(b"")  # its end

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_eof)
            reason = await self._pump(stream)
            nursery.cancel_scope.cancel()
        return reason

    async def _pump(self, stream: trio.SocketStream) -> str:
        self._pumping = True
        try:
            return await self._pump_until_broken(stream)
        finally:
            self._pumping = False

    async def _pump_until_broken(self, stream: trio.SocketStream) -> str:
        self._fd = stream.socket.fileno()
        try:
            return await self._write_until_broken(stream)
        finally:  # a batch cut short by a break is lost, as any unfinished write is
            self._fd, self._wake, self._rest = -1, None, b""

    async def _write_until_broken(self, stream: trio.SocketStream) -> str:
        while True:
            data, self._rest = self._rest or self._host.data_to_send(self.link), b""
            if not data:
                self._wake = trio.Event()
                await self._wake.wait()
                self._wake = None
                continue
            error = await send_all(stream, data, self._stall_timeout)
            if error:
                return error
            self.batches_sent += 1


async def send_all(stream: trio.abc.SendStream, data: bytes, stall_timeout: float) -> str | None:
    """Write ``data``; None when done, else why the link is broken (or stalled: no
    ``SEND_CHUNK`` could be written for ``stall_timeout``)."""
    view = memoryview(data)
    with trio.move_on_after(stall_timeout) as scope:
        try:
            for start in range(0, len(view), SEND_CHUNK):
                await stream.send_all(view[start : start + SEND_CHUNK])
                scope.deadline = trio.current_time() + stall_timeout  # progress
        except (trio.BrokenResourceError, OSError) as exc:
            return str(exc.__cause__ or exc) or "connection broken"
        except trio.ClosedResourceError:  # a two-way link's connection ended meanwhile
            return "connection closed"
    if scope.cancelled_caught:
        return Stalled(f"stalled: nothing could be sent for {stall_timeout:.0f}s")
    return None


class LinkTasks:
    """The running tasks of the outgoing links, by address: one started on each ``Dial``,
    found again for ``Flush``, ``Retry`` and ``CloseLink`` (only if it is still that link's),
    forgotten when it ends, which the engine is told (``ended``)."""

    def __init__(self, host: LinkHost, config: ConnectionConfig, ended: Callable[[Peer], None]):
        self._host = host
        self._config = config
        self._ended = ended
        self._tasks: dict[str, OutgoingLink] = {}

    def busy(self) -> bool:
        return any(task.busy for task in self._tasks.values())

    def get(self, link: Peer) -> OutgoingLink | None:
        task = self._tasks.get(link.addr)
        return task if task is not None and task.link is link else None

    def start(
        self, nursery: trio.Nursery, link: Peer, stream: trio.SocketStream | None = None
    ) -> None:
        cfg = self._config
        task = OutgoingLink(
            link,
            self._host,
            connect_timeout=cfg.connect_timeout,
            stall_timeout=cfg.stall_timeout,
            stream=stream,
        )
        self._tasks[link.addr] = task
        nursery.start_soon(self._run, task)

    async def _run(self, task: OutgoingLink) -> None:
        try:
            await task.run()
        finally:
            if self._tasks.get(task.addr) is task:
                del self._tasks[task.addr]
            self._ended(task.link)
