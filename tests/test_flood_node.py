"""Flood control on real nodes over loopback: a flooder is cut off, honest traffic and the
relays' links are not; honest bursts pass the defaults; the blacklist and its commands."""

from __future__ import annotations

import contextlib

import trio
import trio.testing

from whisper import Node
from whisper.commands import execute
from whisper.events import Blacklisted, Dropped, Event, PeerLost
from whisper.flood import FloodConfig

from .helpers import hashed, inbox, linked, origin, outgoing, send, sink, start_node, wire

TIMEOUT = 20  # nothing here waits this long: the flooder is cut within ~5 s
DEFAULTS = FloodConfig()
FLOOD_RATE = 20 * DEFAULTS.origin_rate  # 400 messages a second
FLOOD_TICK = 0.05


async def flood_node(nursery: trio.Nursery, **kw) -> Node:
    return await start_node(nursery, flood=kw.pop("flood", DEFAULTS), discovery=None, **kw)


class Flooder:
    """A raw peer: one connection to ``target``, writing new messages of its own ``Addr`` at
    ``rate`` a second (paced by the clock), until the target closes the connection."""

    def __init__(self, addr: str) -> None:
        self.addr = addr
        self.sent = 0
        self.closed = trio.Event()
        self.started_at = self.closed_at = 0.0

    async def run(self, target: Node, rate: float, prefix: str = "flood") -> None:
        stream = await origin(target)
        async with stream, trio.open_nursery() as nursery:
            nursery.start_soon(self._watch, stream)
            self.started_at = trio.current_time()
            per_tick = round(rate * FLOOD_TICK)
            tick = 0
            while not self.closed.is_set():
                batch = [wire(f"{prefix} {self.sent + i}", addr=self.addr) for i in range(per_tick)]
                try:
                    await send(stream, *batch)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
                self.sent += per_tick
                tick += 1
                await trio.sleep_until(self.started_at + tick * FLOOD_TICK)  # pacing, not waiting
            await self.closed.wait()
            nursery.cancel_scope.cancel()

    async def _watch(self, stream: trio.SocketStream) -> None:
        try:
            while await stream.receive_some(4096):
                pass
        except trio.BrokenResourceError:
            pass
        self.closed_at = trio.current_time()
        self.closed.set()


def watch_status(node: Node, into: list[Event]):
    async def watch(task_status=trio.TASK_STATUS_IGNORED):
        with node.subscribe(buffer=100_000) as events:
            task_status.started()
            async for event in events:
                if isinstance(event, (PeerLost, Dropped, Blacklisted)):
                    into.append(event)

    return watch


async def test_a_flooder_at_20x_is_cut_off_while_honest_peers_chat_through_the_relays(nursery):
    # Relays in a chain r1 - r2 - r3, linked both ways; honest h1 joins at r1, h2 at r3.
    r2 = await flood_node(nursery, nick="r2")
    r1 = await flood_node(nursery, nick="r1", peers=[r2.addr])
    r3 = await flood_node(nursery, nick="r3", peers=[r2.addr])
    r2.connect(r1.addr)
    r2.connect(r3.addr)
    h1 = await flood_node(nursery, nick="h1", peers=[r1.addr])
    h2 = await flood_node(nursery, nick="h2", peers=[r3.addr])
    relays, honest = [r1, r2, r3], [h1, h2]
    boxes = {node.nick: await inbox(nursery, node) for node in [*relays, *honest]}
    said: list[str] = []
    relay_events: dict[str, list[Event]] = {r.nick: [] for r in relays}
    for relay in relays:
        await nursery.start(watch_status(relay, relay_events[relay.nick]))
    flooder_sink = await sink(nursery)  # the flooder's listening address: its Addr
    flooder = Flooder(flooder_sink.addr)

    async def chat(node: Node, lines: int, paste: int = 0) -> None:
        for i in range(lines):
            said.append(node.say(f"{node.nick} says {i}").body)
            if i == lines // 2:
                for j in range(paste):  # a user pastes a block of text mid-flood
                    said.append(await execute_line(node, f"{node.nick} pasted line {j}"))
            await trio.sleep(0.1)  # a person typing, paced

    with trio.fail_after(TIMEOUT):
        await linked(r1, r2.addr)
        await linked(r2, r1.addr, r3.addr)
        await linked(r3, r2.addr)
        await linked(h1, r1.addr)
        await linked(h2, r3.addr)
        async with trio.open_nursery() as traffic:
            traffic.start_soon(flooder.run, r1, FLOOD_RATE)
            traffic.start_soon(chat, h1, 30, 200)
            traffic.start_soon(chat, h2, 30)
            await flooder.closed.wait()
        cut_after = flooder.closed_at - flooder.started_at
        everyone = [*relays, *honest]
        for node in everyone:  # every honest message arrives everywhere, exactly once
            mine = {m for m in said if m.startswith(node.nick)}
            await boxes[node.nick].wait_for(lambda got, mine=mine: set(said) - mine <= set(got))
        # The flooder comes back at once: it is cut again after a few messages.
        again = Flooder(flooder_sink.addr)
        await again.run(r1, FLOOD_RATE, prefix="again")
        await trio.testing.wait_all_tasks_blocked(cushion=0.2)
    elapsed = trio.current_time() - flooder.started_at

    assert cut_after < 8.0, cut_after  # ~4.4 s: burst, relay allowance, penalty credit
    assert flooder.sent >= FLOOD_RATE * 2  # it really flooded at 20x for seconds
    for node in [*relays, *honest]:
        bodies = boxes[node.nick].bodies
        honest_seen = [b for b in bodies if not b.startswith(("flood", "again"))]
        assert sorted(honest_seen) == sorted(m for m in said if not m.startswith(node.nick))
        # Contained at the first hop: nobody got more of the flood than the origin limit.
        flood_seen = sum(b.startswith(("flood", "again")) for b in bodies)
        limit = DEFAULTS.origin_burst + DEFAULTS.origin_rate * elapsed
        assert flood_seen <= limit, (node.nick, flood_seen, limit)
    assert again.sent <= 2 * FLOOD_RATE * FLOOD_TICK * 10  # cut within half a second
    # r1 blacklisted the flooder: not dialled, no link; the relays kept their links.
    assert r1.engine.flood.blocked(flooder_sink.addr, trio.current_time())
    assert flooder_sink.addr not in outgoing(r1) and not r1.learned(flooder_sink.addr)
    assert r1.engine.flood.stats.cut == 2  # the flood, and the flood again
    assert r2.engine.flood.stats.cut == r3.engine.flood.stats.cut == 0
    assert r2.engine.flood.stats.penalties == r3.engine.flood.stats.penalties == 0
    assert r1.addr in outgoing(r2) and r3.addr in outgoing(r2) and r2.addr in outgoing(r1)
    assert r2.addr in outgoing(r3)
    for relay in relays:
        lost = relay_events[relay.nick]
        expected = [e for e in lost if isinstance(e, Blacklisted)] if relay is r1 else []
        assert lost == expected, (relay.nick, lost)
    listing = (await execute(r1, "/blacklist")).lines
    assert listing[1].startswith(f"  {flooder_sink.addr} (from 127.0.0.1)")


async def execute_line(node: Node, line: str) -> str:
    reply = await execute(node, line)
    assert not reply.lines, reply.lines  # sent: nothing to report
    return line


async def test_200_pasted_lines_and_a_50_message_backlog_pass_the_defaults(nursery):
    a = await flood_node(nursery, nick="a")
    b = await flood_node(nursery, nick="b")
    box = await inbox(nursery, b)
    pasted = [await execute_line(a, f"pasted line {i}") for i in range(200)]  # b is not linked
    with trio.fail_after(TIMEOUT):
        assert a.connect(b.addr)  # the link opens with a backlog replay: the last 50
        await box.wait_for(lambda got: len(got) == 50)
        assert box.bodies == pasted[-50:]
        assert all(d.history for d in box.messages)
        pasted += [await execute_line(a, f"pasted again {i}") for i in range(200)]
        await box.wait_for(lambda got: len(got) == 250)
    assert box.bodies[50:] == pasted[200:]
    assert b.engine.flood.stats.over_origin == b.engine.flood.stats.penalties == 0


async def test_the_blacklist_stops_dials_and_the_commands_list_and_lift_it(nursery):
    tiny = FloodConfig(origin_burst=5, origin_rate=1, penalty_limit=5, relay_allowance=1)
    node = await flood_node(nursery, flood=tiny)
    box = await inbox(nursery, node)
    flooder_sink = await sink(nursery)
    flooder = Flooder(flooder_sink.addr)
    with trio.fail_after(TIMEOUT):
        await flooder.run(node, 400)
    addr = flooder_sink.addr
    dialled = flooder_sink.connections  # it was dialled back before it was cut, or not
    assert not node.learned(addr)  # discovery hears of it: not dialled
    assert (await execute(node, f"/connect {addr}")).lines == [
        f"{addr} is blacklisted (flood control): /unblock it first"
    ]
    honest = await origin(node)
    del node.engine.flood.origins[addr]  # as if its bucket had refilled: the next one is accepted
    with trio.fail_after(TIMEOUT):  # a relayed message of it: accepted, its Addr not dialled
        await send(honest, wire("relayed", addr=addr), wire("marker"))
        await box.wait_for(lambda got: "marker" in got)
    assert "relayed" in box.bodies and addr not in outgoing(node)
    listing = (await execute(node, "/blacklist")).lines
    assert listing[0] == "1 blacklisted; /unblock ADDR lifts an entry"
    assert listing[1].startswith(f"  {addr} (from 127.0.0.1): ") and "over its limit" in listing[1]
    assert (await execute(node, "/unblock 10.9.9.9:9")).lines[0].startswith("10.9.9.9:9 is not")
    assert "is not blacklisted" in (await execute(node, "/unblock 10.9.9.9:\u00b2")).lines[0]
    assert (await execute(node, f"/unblock {addr}")).lines == [f"unblocked {addr}"]
    assert (await execute(node, "/blacklist")).lines == ["nobody is blacklisted"]
    assert node.learned(addr)
    with trio.fail_after(TIMEOUT):
        await flooder_sink.wait_for(lambda s: s.connections == dialled + 1)


async def test_a_flooder_spelling_its_addr_oddly_is_blacklisted_as_it_is_dialled(nursery):
    tiny = FloodConfig(origin_burst=5, origin_rate=1, penalty_limit=5, relay_allowance=1)
    node = await flood_node(nursery, flood=tiny)
    flooder_sink = await sink(nursery)
    host, port = flooder_sink.addr.rsplit(":", 1)
    conn = await origin(node)
    with trio.fail_after(TIMEOUT):
        await send(conn, *(wire(f"flood {i}", addr=f"{host}:00{port}") for i in range(100)))
        with contextlib.suppress(trio.BrokenResourceError):  # a reset: our messages unread
            assert await conn.receive_some(1024) == b""  # cut: EOF
    assert flooder_sink.addr not in outgoing(node)  # dialled as 127.0.0.1:PORT, and closed
    assert not node.learned(flooder_sink.addr)
    listing = (await execute(node, "/blacklist")).lines
    assert listing[1].startswith(f"  {flooder_sink.addr} (from ")


async def test_the_blacklist_expires(nursery, autojump_clock):
    tiny = FloodConfig(origin_burst=5, origin_rate=1, penalty_limit=5, blacklist_for=60)
    node = await flood_node(nursery, flood=tiny)
    flooder_sink = await sink(nursery)
    conn = await origin(node)
    with trio.fail_after(TIMEOUT):
        await send(conn, *(wire(f"flood {i}", addr=flooder_sink.addr) for i in range(100)))
        with contextlib.suppress(trio.BrokenResourceError):  # a reset: our messages unread
            assert await conn.receive_some(1024) == b""  # cut: EOF
    assert not node.learned(flooder_sink.addr)
    await trio.sleep(59)
    assert not node.learned(flooder_sink.addr)
    await trio.sleep(2)
    assert node.learned(flooder_sink.addr)


async def test_flood_control_off_and_over_our_own_limit(nursery):
    off = await start_node(nursery, discovery=None)
    assert off.blacklist() is None
    assert (await execute(off, "/blacklist")).lines[0].startswith("flood control is off")
    node = await flood_node(nursery, flood=FloodConfig(origin_burst=3, origin_rate=0.5))
    for i in range(3):
        await execute_line(node, f"line {i}")
    (refused,) = (await execute(node, "one too many")).lines
    assert refused.startswith(
        "not sent: peers accept 3 messages at once, then 0.5 a second, from one sender; wait "
    )
    assert (await execute(node, "/me waves")).lines[0].startswith("not sent: peers accept")


async def test_a_connection_sending_invalid_messages_is_cut_and_its_host_listed(nursery):
    node = await flood_node(nursery)
    box = await inbox(nursery, node)
    bad = await origin(node)
    forged = [{**hashed(f"real {i}", "127.0.0.1:9"), "Body": f"forged {i}"} for i in range(150)]
    with trio.fail_after(TIMEOUT):
        await send(bad, *forged)
        with contextlib.suppress(trio.BrokenResourceError):  # a reset: our messages unread
            assert await bad.receive_some(1024) == b""
        good = await origin(node)  # loopback is shared: the next connection is welcome
        await send(good, wire("still here"))
        await box.wait_for(lambda got: got == ["still here"])
    assert node.stats.invalid == DEFAULTS.penalty_limit + 1  # the last one used up the credit
    (listed,) = (await execute(node, "/blacklist")).lines[1:]
    assert listed.startswith("  host 127.0.0.1: 101 invalid messages; ")
