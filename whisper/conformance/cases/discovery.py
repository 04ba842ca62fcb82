"""Level ``discovery``: what a peer does with the UDP datagrams it hears (PROTOCOL.md §7.1).

Rules for every case here:
- Datagrams go to 127.0.0.1 and nowhere else: to the peer's UDP discovery port, which the
  suite knows from ``{udp}`` in the ``--cmd`` template or from ``--discovery-port`` (cases
  are skipped without it).  ``Announcer.send`` is the only place that sends, and its
  destination is written in: never a broadcast address, never off the machine.
- An announced sink listens on the peer's own address (``peer.host``: 127.0.0.1, or the LAN
  address given with ``--peer-host``) and datagrams are sent from that address, so that both
  are in the peer's own network, as §7.1 requires of an address a peer dials.
- A peer may bind its UDP port after its TCP listener, so a valid announcement is repeated
  every ``ANNOUNCE_EVERY`` seconds until the sink is dialled (a repeat is harmless: §7.1 has
  a peer dial an address it has a link to never).  A sink counts as discovered once it has
  been dialled and a message sent afterwards has been relayed to it.
- To show that a datagram did NOT make the peer do something, a case first shows that the
  peer hears (one sink discovered), sends the datagram, then has a second sink discovered and
  decides: datagrams on one socket are read in the order they arrive, as a connection's
  messages are (§8.1).  Garbage that names an address names a *trap*, a listener of its own
  that the peer must never dial.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import psutil
import trio

from ..context import CaseContext, CaseFailed, CaseSkipped
from ..fakes import Connection, FakePeer
from ..registry import case

DESTINATION = "127.0.0.1"  # the only address a datagram of the suite is ever sent to
ANNOUNCE_EVERY = 0.5
MAX_UDP = 65_507  # the largest UDP payload over IPv4
RANDOM_BYTES = 256
FULLWIDTH = {ord("0") + d: 0xFF10 + d for d in range(10)}  # digits 0-9 as U+FF10-U+FF19
LIVE = (psutil.CONN_ESTABLISHED, psutil.CONN_SYN_SENT)


class Announcer:
    """The case's UDP socket, bound to the peer's host address; counts what it sent."""

    def __init__(self, sock: trio.socket.SocketType, port: int) -> None:
        self.sock = sock
        self.port = port
        self.sent = 0

    async def send(self, data: bytes) -> None:
        """One datagram to 127.0.0.1:<the peer's discovery port>."""
        with contextlib.suppress(ConnectionRefusedError):  # nobody listening yet
            await self.sock.sendto(data, (DESTINATION, self.port))
        self.sent += 1


@contextlib.asynccontextmanager
async def announcer(ctx: CaseContext) -> AsyncIterator[Announcer]:
    port = ctx.peer.udp_port
    assert port is not None  # the runner skips udp cases without it
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        try:
            await sock.bind((ctx.peer.host, 0))
        except OSError as exc:
            raise CaseSkipped(f"cannot send datagrams from {ctx.peer.host}: {exc}") from None
        yield Announcer(sock, port)


async def discovered(ctx: CaseContext, say: Announcer, sink: FakePeer, when: str) -> Connection:
    """Announce ``sink`` until the peer dials it, then send messages until one is relayed
    to it.  Returns the connection the messages went on."""
    datagram = sink.addr.encode("ascii")

    async def announce() -> None:
        while True:
            await say.send(datagram)
            await trio.sleep(ANNOUNCE_EVERY)

    async with ctx.background(announce):
        await ctx.until(
            lambda: sink.accepted > 0,
            f"a connection to {sink.name} ({sink.addr}), announced {when}",
            sink.summary,
        )
    conn = await ctx.connect(f"messages for {sink.name}")
    probes: list[str] = []
    await ctx.probe(
        conn,
        f"conformance: discovery probe for {sink.name}",
        lambda: sink.got_any(probes),
        f"a message relayed to {sink.name}, which the peer dialled after hearing of it",
        sink.summary,
        probes,
    )
    return conn


@case(
    "discovery",
    "discovery-dial",
    "§7.1",
    "a datagram with the bare ASCII IP:PORT of a peer makes the peer dial it and relay to it",
    udp=True,
)
async def discovery_dial(ctx: CaseContext) -> str:
    sink = await ctx.fake("sink1", host=ctx.peer.host)
    async with announcer(ctx) as say:
        started = time.monotonic()
        await discovered(ctx, say, sink, f"in datagrams to {DESTINATION}:{say.port}")
        elapsed = time.monotonic() - started
    return (
        f"dialled {sink.addr} after {say.sent} datagram(s) naming it and relayed the next"
        f" message to it ({elapsed * 1000:.0f} ms)"
    )


@dataclass(frozen=True)
class Garbage:
    label: str
    data: bytes
    trap: FakePeer | None = None  # listens at the address the datagram seems to name


async def _garbage(ctx: CaseContext, rng: random.Random) -> list[Garbage]:
    """§7.1's kinds of garbage; each one that seems to name an address names a trap."""
    host = ctx.peer.host
    head, _, last = host.rpartition(".")

    async def trap(label: str, text: Callable[[int], str]) -> Garbage:
        fake = await ctx.fake(f"trap ({label})", host=host)
        port = int(fake.addr.rpartition(":")[2])
        return Garbage(label, text(port).encode("utf-8"), fake)

    return [
        Garbage("empty", b""),
        Garbage("random bytes", rng.randbytes(RANDOM_BYTES)),
        Garbage("notanaddr", b"notanaddr"),
        Garbage("999.1.1.1:5", b"999.1.1.1:5"),
        Garbage("no port", host.encode()),
        Garbage("port 0", f"{host}:0".encode()),
        # A peer that keeps 16 bits of the port would dial the trap.
        await trap("port over 65535", lambda p: f"{host}:{p + 65536}"),
        await trap("trailing junk", lambda p: f"{host}:{p}junk"),
        await trap("non-ASCII digits", lambda p: f"{host}:{str(p).translate(FULLWIDTH)}"),
        await trap("leading zero", lambda p: f"{head}.0{last}:{p}"),
        await trap("a name", lambda p: f"localhost:{p}"),
        await trap("JSON", lambda p: json.dumps({"Addr": f"{host}:{p}"})),
        # Padded with spaces: a peer that reads only the start of a datagram would dial.
        await trap(f"over-long ({MAX_UDP:,} bytes)", lambda p: f"{host}:{p}".ljust(MAX_UDP)),
    ]


@case(
    "discovery",
    "discovery-garbage",
    "§7.1",
    "garbage datagrams neither crash the peer nor make it dial; a valid one after them works",
    fresh=True,
    udp=True,
)
async def discovery_garbage(ctx: CaseContext) -> str:
    first = await ctx.fake("sink1", host=ctx.peer.host)
    second = await ctx.fake("sink2", host=ctx.peer.host)
    seed = random.randrange(1 << 16)
    garbage = await _garbage(ctx, random.Random(seed))
    async with announcer(ctx) as say:
        await discovered(ctx, say, first, "before the garbage")
        ctx.observer.step = "sending garbage datagrams"
        for item in garbage:
            await say.send(item.data)
        after = f"after {len(garbage)} garbage datagrams (random bytes from seed {seed})"
        await discovered(ctx, say, second, after)
    dialled = [g for g in garbage if g.trap is not None and g.trap.accepted]
    if dialled:
        named = "; ".join(f"{g.label}: {_shown(g.data)!r}" for g in dialled)
        raise CaseFailed(f"dialled addresses named only by garbage datagrams ({named})")
    traps = sum(1 for g in garbage if g.trap is not None)
    return (
        f"ignored {len(garbage)} garbage datagrams ({traps} naming a listening address, none"
        " dialled); an address announced after them was dialled and relayed to"
    )


@case(
    "discovery",
    "discovery-not-self",
    "§7.1",
    "a datagram with the peer's own address does not make it dial itself",
    fresh=True,
    udp=True,
)
async def discovery_not_self(ctx: CaseContext) -> str:
    own = f"{ctx.peer.host}:{ctx.peer.port}"
    first = await ctx.fake("sink1", host=ctx.peer.host)
    second = await ctx.fake("sink2", host=ctx.peer.host)
    async with announcer(ctx) as say:
        ours = [await discovered(ctx, say, first, "before the peer's own address")]
        await say.send(own.encode("ascii"))
        ours.append(await discovered(ctx, say, second, f"after the peer's own address {own}"))
    suite = {_plain(c.stream.socket.getsockname()) for c in ours}
    others = [a for a in _connections_to(ctx.peer.host, ctx.peer.port) if a not in suite]
    if others:
        names = ", ".join(f"{ip}:{port}" for ip, port in others)
        raise CaseFailed(
            f"dialled its own address {own} after hearing it: connected to it from {names},"
            " which the suite did not open"
        )
    return (
        f"did not dial its own address {own} (every connection to it was the suite's); an"
        " address announced after it was dialled and relayed to"
    )


def _shown(data: bytes) -> str:
    """The start of a datagram, readable (an over-long one's padding is not shown)."""
    return data[:40].decode("utf-8", "backslashreplace").rstrip()


def _plain(addr: tuple) -> tuple[str, int]:
    """``(ip, port)`` with an IPv4-mapped IPv6 address written as IPv4."""
    return str(addr[0]).removeprefix("::ffff:"), int(addr[1])


def _connections_to(host: str, port: int) -> list[tuple[str, int]]:
    """Local ends of this host's open (or opening) TCP connections to ``host:port``."""
    try:
        found = psutil.net_connections(kind="tcp")
    except (psutil.Error, NotImplementedError, OSError) as exc:
        raise CaseSkipped(
            f"cannot list this host's TCP connections, to see if the peer dialled itself ({exc})"
        ) from None
    return [
        _plain(c.laddr)
        for c in found
        if c.raddr and c.status in LIVE and _plain(c.raddr) == (host, port)
    ]
