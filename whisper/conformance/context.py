"""What a case works with: the peer under test, fake peers, messages, and waiting.

Rules:
- A case learns only what crosses the network (objects its fake peers receive, connections
  accepted, refused or closed) and, when the suite started the peer, its exit status.
- A case never sleeps to wait for something: ``until(predicate)`` wakes on every observation
  and fails at the case's deadline, or at once if the peer exits.
- To show that something does NOT happen, a case sends a *marker* after it on the same
  connection and concludes when the marker arrives: a peer relays the messages of one
  connection in the order it read them (``settle``).
- Messages the suite originates have fresh random IDs (16 lowercase hex characters, like the
  Go reference peer's) and the current time in milliseconds, so they pass freshness checks.
- A sink is *registered* when the peer under test has dialled it back after a hello carrying
  its ``Addr`` and has relayed a probe message to it (probes are repeated every
  ``PROBE_INTERVAL`` until one arrives, for peers that drop messages on a busy link).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import trio

from .fakes import Connection, FakePeer, Observer
from .harness import PeerUnderTest

PROBE_INTERVAL = 0.5
EXIT_GRACE = 5.0  # a refused connection: how long a dying peer may take to exit (failure path only)


class CaseFailed(Exception):
    """The peer under test did not do what the case checks; ``detail`` says what was seen."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class CaseSkipped(Exception):
    """The case cannot be decided here (the OS hides what it observes ...): SKIP, ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def now_ms() -> int:
    return int(time.time() * 1000)


def random_id() -> str:
    return secrets.token_hex(8)


def hashed_id(addr: str, body: str, timestamp: int | None) -> str:
    """PROTOCOL.md §3.2, written out here so the suite does not trust whisper's own code."""
    stamp = "" if timestamp is None else str(timestamp)
    return "hash:sha256:" + hashlib.sha256((addr + body + stamp).encode()).hexdigest()


class CaseContext:
    def __init__(
        self, peer: PeerUnderTest, nursery: trio.Nursery, deadline: float, timeout: float
    ) -> None:
        self.peer = peer
        self.nursery = nursery
        self.deadline = deadline
        self.timeout = timeout
        self.observer = Observer()
        self.fakes: list[FakePeer] = []
        self.origin: FakePeer  # set by open_context: the Addr of messages cases send
        self._reserved: list[socket.socket] = []

    @property
    def step(self) -> str:
        return self.observer.step

    # -- fake peers and connections ---------------------------------------------------

    async def fake(
        self, name: str, *, stall: bool = False, host: str = "127.0.0.1", banner: bytes = b""
    ) -> FakePeer:
        fake = await FakePeer.open(name, self.observer, stall=stall, host=host, banner=banner)
        self.fakes.append(fake)
        self.nursery.start_soon(fake.serve)
        return fake

    async def sinks(self, count: int) -> list[FakePeer]:
        """``count`` registered sinks, named sink1, sink2 ..."""
        fakes = [await self.fake(f"sink{i + 1}") for i in range(count)]
        await self.register(*fakes)
        return fakes

    async def connect(self, name: str = "origin") -> Connection:
        """A new connection to the peer under test (TCP_NODELAY, watched for closing)."""
        self.observer.step = f"connecting ({name})"
        try:
            stream = await trio.open_tcp_stream(self.peer.host, self.peer.port)
        except OSError as exc:
            raise CaseFailed(await self._gone(f"refused a new connection ({exc})")) from None
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        conn = Connection(name, stream, self.observer)
        self.nursery.start_soon(conn.watch)
        return conn

    async def register(self, *fakes: FakePeer) -> None:
        """Hello from each fake (its Addr), wait for the dial-backs, then for a probe
        relayed to each: from then on the peer under test relays to them."""
        for fake in fakes:
            conn = await self.connect(f"{fake.name}'s hello")
            await conn.send_obj(self.message(f"conformance: hello from {fake.name}", fake))
        addrs = ", ".join(f.addr for f in fakes)
        await self.until(
            lambda: all(f.accepted for f in fakes),
            f"a connection to {addrs} (the Addr of their hellos)",
        )
        probes: list[str] = []
        for fake in fakes:
            fake.stop_reading = lambda fake=fake: fake.got_any(probes)
        await self.probe(
            await self.connect("probes"),
            "conformance: probe",
            lambda: all(f.got_any(probes) for f in fakes),
            "a probe message relayed to every dialled-back sink",
            probes=probes,
        )

    async def probe(
        self,
        conn: Connection,
        body: str,
        predicate: Callable[[], bool],
        waiting_for: str,
        seen: Callable[[], str] | None = None,
        probes: list[str] | None = None,
    ) -> list[str]:
        """Write a fresh message (``body``) on ``conn`` every ``PROBE_INTERVAL`` until
        ``predicate()`` holds (``until``); the IDs written, appended to ``probes``."""
        ids = [] if probes is None else probes

        async def send_probes() -> None:
            while True:
                probe = self.message(body)
                ids.append(probe["ID"])
                await conn.send_obj(probe)
                await trio.sleep(PROBE_INTERVAL)

        async with self.background(send_probes):
            await self.until(predicate, waiting_for, seen)
        return ids

    def closed_port(self) -> str:
        """``127.0.0.1:PORT`` of a port that is bound but not listening: dials are refused."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._reserved.append(sock)
        return f"127.0.0.1:{sock.getsockname()[1]}"

    @contextlib.asynccontextmanager
    async def background(self, fn: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
        """Run ``fn`` while the block runs (it must not raise).  Leaving the block cancels
        ``fn`` and waits for it to end, so that nothing it was writing is still being written
        when the case goes on (two writers on one stream: ``BusyResourceError``)."""
        scope = trio.CancelScope()
        finished = trio.Event()

        async def run() -> None:
            try:
                with scope:
                    await fn()
            finally:
                finished.set()

        self.nursery.start_soon(run)
        try:
            yield
        finally:
            scope.cancel()
            with trio.CancelScope(shield=True):
                await finished.wait()

    # -- messages ---------------------------------------------------------------------

    def message(self, body: str, sender: FakePeer | None = None) -> dict[str, Any]:
        """A fresh chat message from ``sender`` (default: the origin fake)."""
        addr = (sender or self.origin).addr
        return {"ID": random_id(), "Addr": addr, "Body": body, "Timestamp": now_ms()}

    # -- waiting ----------------------------------------------------------------------

    async def until(
        self,
        predicate: Callable[[], bool],
        waiting_for: str,
        seen: Callable[[], str] | None = None,
    ) -> None:
        """Return once ``predicate()`` holds; fail at the deadline or if the peer exits."""
        self.observer.step = f"waiting for {waiting_for}"
        while not predicate():
            if self.peer.exited.is_set():
                raise CaseFailed(f"{self.peer.exit_detail()} while waiting for {waiting_for}")
            with trio.move_on_at(self.deadline) as scope:
                await self.observer.changed()
            if scope.cancelled_caught:
                what = seen() if seen else self.seen_summary()
                raise CaseFailed(
                    f"timed out after {self.timeout:.0f}s waiting for {waiting_for}"
                    + (f"; {what}" if what else "")
                )

    async def settle(self, conn: Connection, sink: FakePeer, after: str) -> dict[str, Any]:
        """Send a marker on ``conn`` and wait for it at ``sink``: everything sent before it
        that the peer relays has then been relayed.  Fails if the peer closes ``conn``."""
        marker = self.message(f"conformance: marker after {after}")
        await conn.send_obj(marker)
        await self.until(
            lambda: bool(sink.got(marker)) or conn.closed is not None,
            f"the marker sent after {after}",
        )
        if not sink.got(marker):
            # A peer that is dying closes its connections before it exits: say so, rather
            # than race a liveness check against the exit (failure path only).
            if await self.peer.wait_for_exit(EXIT_GRACE):
                raise CaseFailed(
                    f"{self.peer.exit_detail()}; it closed the connection after {after}"
                )
            await self.check_alive(sink, f"after {after}")
            raise CaseFailed(f"the peer closed the connection after {after} ({conn.closed})")
        return marker

    async def check_alive(self, sink: FakePeer, after: str) -> None:
        """A message on a new connection still reaches ``sink`` (the peer keeps serving)."""
        conn = await self.connect("liveness check")
        probe = self.message(f"conformance: still relaying {after}?")
        await conn.send_obj(probe)
        await self.until(
            lambda: bool(sink.got(probe)), f"a message on a new connection relayed {after}"
        )

    def seen_summary(self) -> str:
        return "; ".join(f.summary() for f in self.fakes if f is not self.origin)

    async def _gone(self, what: str) -> str:
        if await self.peer.wait_for_exit(EXIT_GRACE):
            return f"{self.peer.exit_detail()}; it {what}"
        return f"the peer {what}"


@contextlib.asynccontextmanager
async def open_context(peer: PeerUnderTest, timeout: float) -> AsyncIterator[CaseContext]:
    """A case's world; everything opened in it is closed when the block ends."""
    async with trio.open_nursery() as nursery:
        ctx = CaseContext(peer, nursery, trio.current_time() + timeout, timeout)
        nursery.start_soon(_notify_on_exit, peer, ctx.observer)
        try:
            ctx.origin = await ctx.fake("origin")
            yield ctx
        finally:
            nursery.cancel_scope.cancel()
            for sock in ctx._reserved:
                sock.close()


async def _notify_on_exit(peer: PeerUnderTest, observer: Observer) -> None:
    await peer.exited.wait()
    observer.notify()
