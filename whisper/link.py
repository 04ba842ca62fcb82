"""One outgoing link: the single TCP stream on which we send messages to one peer.

Rules:
- The link owns a bounded ``SendQueue`` (all queues share the node's ``SendBudget``).
  ``enqueue`` never blocks: when the queue is full, or the budget is spent and this queue is
  among the longest, the message is dropped for this peer only; each overflow episode is
  logged once.
- One task per link.  It dials (``CONNECT_TIMEOUT``), sets ``TCP_NODELAY``, then sends
  queued messages in batches.  A write that makes no progress (not one ``SEND_CHUNK``) for
  ``SEND_STALL_TIMEOUT`` means the peer has stalled: the link is dropped and retried later
  like any failure, and counts as one however long the link was up (``PeerTable.failed``):
  a peer that keeps stalling is given up on.  A slow peer that keeps reading is not stalled,
  however long a batch or a backlog replay takes it.
- Whispernet connections are one-way: anything the peer sends back is read and discarded,
  and its EOF tells us the link is gone.
- After a failure the link waits as the ``PeerTable`` says, or gives up (the task returns,
  and its queue is emptied).  The queue is kept across reconnects, so what was queued during
  a short outage is sent.
- On each connection the backlog replay the node attached (``replay``, extension 11) is
  written first, before anything queued, one message at a time from the backlog's own
  ``bytes`` (encoded once for every link).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from .addr import parse_hostport
from .peers import PeerTable
from .sendqueue import SendQueue, Shared

if TYPE_CHECKING:
    from .backlog import LinkReplay
    from .flood import LinkBudget

CONNECT_TIMEOUT = 5.0
SEND_STALL_TIMEOUT = 10.0
#: Progress is measured in writes of this size: a slow peer that keeps reading is not stalled.
SEND_CHUNK = 64 * 1024

log = logging.getLogger("whisper.link")


class OutgoingLink:
    def __init__(
        self,
        addr: str,
        table: PeerTable,
        notice: Callable[[str, bool], None],
        queue: SendQueue | None = None,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        stall_timeout: float = SEND_STALL_TIMEOUT,
    ) -> None:
        self.addr = addr
        self.queue = queue if queue is not None else SendQueue()
        self._table = table
        self._notice = notice
        self._connect_timeout = connect_timeout
        self._stall_timeout = stall_timeout
        self._wake: trio.Event | None = None
        self._cancel = trio.CancelScope()
        self._stalled = False  # the last connection ended in a stall
        self._overflows_logged = 0
        self.batches_sent = 0
        #: Set by the node: the backlog to write first on each connection (extension 11).
        self.replay: LinkReplay | None = None
        #: Set by the node: what flood control lets it send the peer (extension 12).
        self.budget: LinkBudget | None = None

    def enqueue(self, data: bytes | Shared, now: float) -> None:
        queue = self.queue
        queued = queue.put(data, now)
        if queue.overflows != self._overflows_logged:  # this one, or a cut by the budget
            self._overflows_logged = queue.overflows
            log.warning("dropping messages for %s: %s", self.addr, queue.overflow)
        if queued and self._wake is not None:
            self._wake.set()

    def close(self) -> None:
        self._cancel.cancel()

    async def run(self) -> None:
        """Dial, send, redial; return when given up or closed."""
        try:
            with self._cancel:
                await self._redial()
        finally:
            self.queue.close()  # and out of the send budget

    async def _redial(self) -> None:
        while True:
            error = await self._connect_and_pump()
            now = trio.current_time()
            delay = self._table.failed(self.addr, now, error, stalled=self._stalled)
            if delay is None:
                self._notice(f"gave up on {self.addr}: {error}", True)
                return
            first = self._table.outgoing[self.addr].failures == 1
            log.log(
                logging.WARNING if first else logging.INFO,
                "cannot reach %s: %s; retrying in %.1fs",
                self.addr,
                error,
                delay,
            )
            await trio.sleep(delay)
            self._table.connecting(self.addr, trio.current_time())

    async def _connect_and_pump(self) -> str:
        self._stalled = False
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
            self._table.connected(self.addr, trio.current_time())
            self._notice(f"connected to {self.addr}", False)
            error = await self._session(stream)
        if self.replay is not None:
            self.replay.lost()
        self._notice(f"lost {self.addr}: {error}", True)
        return error

    async def _session(self, stream: trio.SocketStream) -> str:
        """Send until the link breaks; return why it did."""
        reason = "connection broken"

        async def watch_eof() -> None:
            nonlocal reason
            while True:
                try:
                    data = await stream.receive_some(4096)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return  # the pump sees the same error on its next send
                if not data:
                    reason = "peer closed the connection"
                    nursery.cancel_scope.cancel()
                    return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_eof)
            reason = await self._send_replay(stream) or await self._pump(stream)
            nursery.cancel_scope.cancel()
        return reason

    async def _send_replay(self, stream: trio.SocketStream) -> str | None:
        """Write the backlog owed to this connection before anything queued; why it failed."""
        for data in self.replay.connected() if self.replay is not None else ():
            error = await self._send(stream, data)
            if error:
                return error
        return None

    async def _pump(self, stream: trio.SocketStream) -> str:
        queue = self.queue
        while True:
            data = queue.take()
            if not data:
                self._wake = trio.Event()
                await self._wake.wait()
                self._wake = None
                continue
            error = await self._send(stream, data)
            if error:
                return error
            self.batches_sent += 1

    async def _send(self, stream: trio.SocketStream, data: bytes) -> str | None:
        """Write ``data``; None when done, else why the link is broken (or stalled: no
        ``SEND_CHUNK`` could be written for the stall timeout)."""
        view = memoryview(data)
        with trio.move_on_after(self._stall_timeout) as scope:
            try:
                for start in range(0, len(view), SEND_CHUNK):
                    await stream.send_all(view[start : start + SEND_CHUNK])
                    scope.deadline = trio.current_time() + self._stall_timeout  # progress
            except (trio.BrokenResourceError, OSError) as exc:
                return str(exc.__cause__ or exc) or "connection broken"
        if scope.cancelled_caught:
            self._stalled = True
            return f"stalled: nothing could be sent for {self._stall_timeout:.0f}s"
        return None
