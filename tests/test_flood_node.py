"""Flood control on real nodes over loopback: a flooder is cut off, honest traffic and the
relays' links are not; honest bursts pass the defaults; the blacklist and its commands."""

from __future__ import annotations

import contextlib

import trio
import trio.testing

from whisper import Node
from whisper.commands import execute
from whisper.events import Delivered
from whisper.flood import RESERVE, FloodConfig
from whisper.seen import SeenConfig

from .helpers import (
    Inbox,
    eof,
    hashed,
    inbox,
    linked,
    now_ms,
    origin,
    outgoing,
    send,
    sink,
    start_node,
    wire,
)

TIMEOUT = 20  # nothing here waits this long: the flooder is cut within ~5 s
DEFAULTS = FloodConfig()
FIRST = DEFAULTS.conn_start + DEFAULTS.conn_burst * RESERVE  # a fresh connection's 1,100
FLOOD_RATE = 20 * DEFAULTS.origin_rate  # 400 messages a second ...
FLOOD_SECONDS = 4.0  # ... for this long
CUT_RATE = 2000.0  # 4 times the connection limit
FLOOD_TICK = 0.05


async def flood_node(nursery: trio.Nursery, **kw) -> Node:
    return await start_node(nursery, flood=kw.pop("flood", DEFAULTS), discovery=None, **kw)


async def us_and_bob(nursery: trio.Nursery) -> tuple[Node, Node, Inbox]:
    """Our node and bob's, linked both ways; our inbox, which has bob's hello."""
    us = await flood_node(nursery, nick="us")
    bob = await flood_node(nursery, nick="bob", peers=[us.addr])
    box = await inbox(nursery, us)
    with trio.fail_after(TIMEOUT):
        bob.say("hello")
        await linked(us, bob.addr)
        await box.wait_for(lambda got: got == ["hello"])
    return us, bob, box


class Flooder:
    """A raw peer: one connection to ``target``, writing new messages of its own ``Addr`` at
    ``rate`` a second (paced by the clock), until the target closes the connection."""

    def __init__(self, addr: str) -> None:
        self.addr = addr
        self.sent = 0
        self.closed = trio.Event()
        self.started_at = self.closed_at = 0.0

    async def run(
        self,
        target: Node,
        rate: float,
        prefix: str = "flood",
        seconds: float = float("inf"),
        *,
        rotate: bool = False,
    ) -> None:
        """Flood for ``seconds`` (then hang up) or until cut; ``rotate``: a new Addr (not
        one we could dial) in every message."""
        stream = await origin(target)
        async with stream, trio.open_nursery() as nursery:
            nursery.start_soon(self._watch, stream)
            self.started_at = trio.current_time()
            per_tick = round(rate * FLOOD_TICK)
            tick = 0
            while not self.closed.is_set() and tick * FLOOD_TICK < seconds:
                batch = [
                    self._message(f"{prefix} {self.sent + i}", rotate) for i in range(per_tick)
                ]
                try:
                    await send(stream, *batch)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
                self.sent += per_tick
                tick += 1
                await trio.sleep_until(self.started_at + tick * FLOOD_TICK)  # pacing, not waiting
            if not self.closed.is_set():
                await stream.send_eof()  # done: the node reads the rest, then closes
            await self.closed.wait()
            nursery.cancel_scope.cancel()

    def _message(self, body: str, rotate: bool) -> dict:
        return wire(body, addr=f"flood-{body.replace(' ', '-')}" if rotate else self.addr)

    async def _watch(self, stream: trio.SocketStream) -> None:
        try:
            while await stream.receive_some(4096):
                pass
        except trio.BrokenResourceError:
            pass
        self.closed_at = trio.current_time()
        self.closed.set()


def notices(node: Node, into: list[str]):  # status events: each has text
    async def watch(task_status=trio.TASK_STATUS_IGNORED):
        with node.subscribe(buffer=100_000) as events:
            task_status.started()
            async for event in events:
                if not isinstance(event, Delivered):
                    into.append(event.text)

    return watch


async def test_a_flooder_at_20x_is_contained_at_the_first_hop_while_honest_peers_chat(nursery):
    """Relays in a chain r1 - r2 - r3, linked both ways; honest h1 joins at r1, h2 at r3.
    A flooder of one origin at 20 times its limit enters at r1: r1 relays it at the limit,
    so nobody behind r1 sees more; nobody is blamed for what an Addr claims."""
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
    relay_notices: dict[str, list[str]] = {r.nick: [] for r in relays}
    for relay in relays:
        await nursery.start(notices(relay, relay_notices[relay.nick]))
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
            traffic.start_soon(flooder.run, r1, FLOOD_RATE, "flood", FLOOD_SECONDS)
            traffic.start_soon(chat, h1, 30, 200)
            traffic.start_soon(chat, h2, 30)
        everyone = [*relays, *honest]
        for node in everyone:  # every honest message arrives everywhere, exactly once
            mine = {m for m in said if m.startswith(node.nick)}
            await boxes[node.nick].wait_for(lambda got, mine=mine: set(said) - mine <= set(got))
        await trio.testing.wait_all_tasks_blocked(cushion=0.2)
    elapsed = trio.current_time() - flooder.started_at

    assert flooder.sent >= FLOOD_RATE * 2  # it really flooded at 20x for seconds
    for node in [*relays, *honest]:
        bodies = boxes[node.nick].bodies
        honest_seen = [b for b in bodies if not b.startswith("flood")]
        assert sorted(honest_seen) == sorted(m for m in said if not m.startswith(node.nick))
        # Contained at the first hop: nobody got more of the flood than the origin limit.
        flood_seen = sum(b.startswith("flood") for b in bodies)
        limit = DEFAULTS.origin_burst + DEFAULTS.origin_rate * elapsed
        assert flood_seen <= limit, (node.nick, flood_seen, limit)
    assert sum(b.startswith("flood") for b in boxes["r1"].bodies) >= DEFAULTS.origin_burst
    # Nobody was cut or blamed; r1 dialled the flooder's Addr like anyone's.
    for relay in relays:
        assert relay.engine.flood.stats.cut == relay.engine.flood.stats.penalties == 0, relay.nick
        lost = [n for n in relay_notices[relay.nick] if n.startswith(("lost", "dropped"))]
        assert lost == [], (relay.nick, lost)
    assert r1.addr in outgoing(r2) and r3.addr in outgoing(r2) and r2.addr in outgoing(r1)
    assert r2.addr in outgoing(r3) and flooder_sink.addr in outgoing(r1)
    assert (await execute(r1, "/blacklist")).lines == ["nobody is blacklisted"]


async def test_a_flood_over_the_connection_limit_is_cut_and_cut_again_when_it_comes_back(
    nursery,
):
    node, bob, box = await us_and_bob(nursery)
    with trio.fail_after(TIMEOUT):
        flooder = Flooder("127.0.0.1:9")
        await flooder.run(node, CUT_RATE, rotate=True)  # a new Addr in every message
        again = Flooder("127.0.0.1:9")
        await again.run(node, CUT_RATE, prefix="again", rotate=True)
        bob.say("still here")
        await box.wait_for(lambda got: "still here" in got)
    cut_after = flooder.closed_at - flooder.started_at
    assert cut_after < 3.0, cut_after  # 1,100 at once, then 500 a second, 100 more: ~0.8 s
    # Back at once on loopback (not refused: every local peer shares the IP), it is cut
    # again after its new connection's start and reserve, paid by what is left of the spare.
    assert again.closed_at - again.started_at < 3.0
    assert node.engine.flood.stats.cut == 2
    # We relayed what we took of both to bob, no faster than his new connection from us
    # accepts: he had no reason to cut us off.
    assert node.stats.held_back > 0
    assert bob.engine.flood.stats.cut == bob.engine.flood.stats.penalties == 0
    assert node.engine.table.outgoing[bob.addr].state.value == "connected"
    (entry,) = node.engine.flood.blacklist.entries(trio.current_time())
    assert entry.host == "127.0.0.1" and entry.addr is None
    assert (
        bob.addr in outgoing(node)
        and node.engine.flood.blocked(bob.addr, trio.current_time()) is None
    )
    listing = (await execute(node, "/blacklist")).lines
    assert listing[1].startswith("  host 127.0.0.1: ") and "over the connection limit" in listing[1]


async def execute_line(node: Node, line: str) -> str:
    reply = await execute(node, line)
    assert not reply.lines, reply.lines  # sent: nothing to report
    return line


async def test_200_pasted_lines_and_a_50_message_backlog_pass_the_defaults(nursery):
    a = await flood_node(nursery, nick="a")
    b = await flood_node(nursery, nick="b")
    box = await inbox(nursery, b)
    pasted = [await execute_line(a, f"pasted line {i}") for i in range(200)]  # b is not linked yet
    with trio.fail_after(TIMEOUT):
        assert a.connect(b.addr)  # the link opens with a backlog replay: the last 50
        await box.wait_for(lambda got: len(got) == 50)
        assert box.bodies == pasted[-50:]
        assert all(d.history for d in box.messages)
        pasted += [await execute_line(a, f"pasted again {i}") for i in range(200)]
        await box.wait_for(lambda got: len(got) == 250)
    assert box.bodies[50:] == pasted[200:]
    assert b.engine.flood.stats.over_origin == b.engine.flood.stats.penalties == 0


async def test_a_flood_claiming_bobs_addr_blacklists_nobody_and_bob_is_still_heard(
    nursery, autojump_clock
):
    """1,700 messages in one write, each with bob's Addr: the attacker was cut, but bob was
    blacklisted for 600 s and our link to bob closed."""
    us, bob, box = await us_and_bob(nursery)
    with trio.fail_after(TIMEOUT):
        host, port = bob.addr.rsplit(":", 1)
        spellings = [bob.addr, f"{host}:0{port}"]  # both are bob, canonically
        attacker = await origin(us)
        started = trio.current_time()
        forged = [wire(f"forged {i}", addr=spellings[i % 2]) for i in range(1700)]
        more = [wire(f"more {i}", addr=bob.addr) for i in range(3000)]  # past the budget too
        with contextlib.suppress(trio.BrokenResourceError):  # a reset: our messages unread
            await send(attacker, *forged, *more)
            assert await eof(attacker)  # cut: EOF
        elapsed = trio.current_time() - started
        lines = [f"bob says {i}" for i in range(5)]
        for line in lines:
            bob.say(line)
        await box.wait_for(lambda got: set(lines) <= set(got))
    # Contained: one connection's budget for bob's Addr, however it is spelt.
    forged_seen = sum(b.startswith(("forged", "more")) for b in box.bodies)
    assert forged_seen <= DEFAULTS.origin_burst + DEFAULTS.origin_rate * elapsed + 1
    assert us.engine.flood.stats.cut == 1
    (entry,) = us.engine.flood.blacklist.entries(trio.current_time())
    assert entry.addr is None and entry.host == "127.0.0.1"  # the attacker's host, shared
    assert us.engine.flood.blocked(bob.addr, trio.current_time()) is None
    assert us.engine.table.outgoing[bob.addr].state.value == "connected"
    assert bob.addr in outgoing(us)  # never closed
    listing = (await execute(us, "/blacklist")).lines  # the flood's claim is told, as a claim
    assert listing[1].startswith("  host 127.0.0.1: ") and f"from {bob.addr}: anyone" in listing[1]


async def forge(stream: trio.SocketStream, addr: str, rate: float, seconds: float) -> int:
    """Write new messages claiming ``addr`` at ``rate`` for ``seconds`` (paced); how many."""
    start, sent = trio.current_time(), 0
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        while sent < rate * seconds:
            await send(stream, wire(f"forged {sent}", addr=addr))
            sent += 1
            await trio.sleep_until(start + sent / rate)  # pacing
    return sent


async def test_forgers_on_six_connections_silence_neither_bob_nor_us(nursery, autojump_clock):
    """Six connections at 38 a second forging bob's Addr, each under every per-connection
    limit: 6 of bob's 40 messages got through.  Forging our own Addr at 38 a second: 1 of
    our user's 10 lines was sent."""
    us, bob, box = await us_and_bob(nursery)
    heard_by_bob = await inbox(nursery, bob)
    with trio.fail_after(TIMEOUT * 3):
        bobs = [f"bob says {i}" for i in range(40)]
        ours = [f"we say {i}" for i in range(10)]

        async def bob_talks() -> None:
            for line in bobs:
                bob.say(line)
                await trio.sleep(0.5)  # 2 a second, paced

        async def we_talk() -> None:
            for line in ours:
                await execute_line(us, line)  # "not sent: peers accept ..." fails here
                await trio.sleep(2.0)

        async with trio.open_nursery() as traffic:
            for _ in range(6):
                traffic.start_soon(forge, await origin(us), bob.addr, 38.0, 20.0)
            traffic.start_soon(forge, await origin(us), us.addr, 38.0, 20.0)
            traffic.start_soon(bob_talks)
            traffic.start_soon(we_talk)
        await box.wait_for(lambda got: set(bobs) <= set(got))
        await heard_by_bob.wait_for(lambda got: set(ours) <= set(got))
    assert not any(b.startswith("forged") and b in ours for b in box.bodies)
    assert us.stats.forged >= DEFAULTS.penalty_limit  # forgeries of us: dropped, counted ...
    assert us.engine.flood.stats.cut == 1  # ... and their connection cut; only theirs
    assert us.engine.flood.blocked(bob.addr, trio.current_time()) is None
    assert us.engine.table.outgoing[bob.addr].state.value == "connected"


async def test_a_reconnecting_flooder_gets_no_new_burst_and_old_honest_messages_are_no_fault(
    nursery, autojump_clock
):
    """A fresh connection every 4,900 messages pushed 20,000 a second: the seen cache
    filled, the window shrank to 10-13 s, and honest messages 15 s old were dropped and
    counted against the connection that carried them."""
    us = await flood_node(nursery, seen=SeenConfig(max_entries=800))  # a flood fills it quickly
    box = await inbox(nursery, us)
    honest = await origin(us)  # a peer's link, open before the flood
    started = trio.current_time()
    with trio.fail_after(TIMEOUT):
        for k in range(8):
            conn = await origin(us)
            flood = [wire(f"flood {k} {i}", addr=f"flood-{k}-{i}") for i in range(4900)]
            with contextlib.suppress(trio.BrokenResourceError):
                await send(conn, *flood)
                await conn.send_eof()
                assert await eof(conn)  # read to the end, or cut
            await conn.aclose()
        elapsed = trio.current_time() - started
        assert us.engine.seen.span(trio.current_time()) < 15  # it had to forget early
        old = wire("15 s old", Timestamp=now_ms() - 15_000)
        await send(honest, old, wire("fresh"))
        await box.wait_for(lambda got: "fresh" in got)
    accepted = sum(b.startswith("flood") for b in box.bodies)
    # The host's spare (5,000), then 550 a second (reading is paced at 2,000 a second) and a
    # token for each new connection: what one connection flooding all along would get, not
    # 8 x 4,900.
    assert accepted <= DEFAULTS.conn_burst + 550 * elapsed + 8, (accepted, elapsed)
    assert accepted < 4900 * 8 / 2
    assert "15 s old" not in box.bodies  # dropped: it could be a replay we forgot ...
    assert us.stats.forgotten >= 1 and us.stats.invalid == 0  # ... and not held against it


async def test_payloads_without_a_body_are_counted_and_their_flood_cut(nursery, autojump_clock):
    """30 million ``{}`` from 4 connections were not counted at all and held us at 100%."""
    us = await flood_node(nursery)
    box = await inbox(nursery, us)
    with trio.fail_after(TIMEOUT):
        conn = await origin(us)
        started = trio.current_time()
        with contextlib.suppress(trio.BrokenResourceError):
            for _ in range(10):  # 300,000 in all, as fast as we can write them
                await conn.send_all(b"{}" * 30_000)
            assert await eof(conn)  # cut: EOF
        elapsed = trio.current_time() - started
        good = await origin(us)
        await send(good, wire("still here"))
        await box.wait_for(lambda got: got == ["still here"])
    # Read at 2,000 a second; its 1,100, 500 a second, the penalty credit: ~0.8 s.
    budget = FIRST + 500 * elapsed + DEFAULTS.penalty_limit + 1
    assert us.stats.ignored <= budget and elapsed < 3, (us.stats.ignored, elapsed)
    assert us.engine.flood.stats.cut == 1


async def test_the_blacklist_commands_list_and_lift_it(nursery):
    tiny = FloodConfig(conn_burst=20, conn_rate=10, penalty_limit=5)
    node = await flood_node(nursery, flood=tiny)
    with trio.fail_after(TIMEOUT):
        await Flooder("127.0.0.1:9").run(node, 400, rotate=True)
    listing = (await execute(node, "/blacklist")).lines
    assert listing[0] == "1 blacklisted; /unblock ADDR lifts an entry"
    assert listing[1].startswith("  host 127.0.0.1: ") and "over the connection limit" in listing[1]
    assert (await execute(node, "/unblock 10.9.9.9:9")).lines[0].startswith("10.9.9.9:9 is not")
    assert "is not blacklisted" in (await execute(node, "/unblock 10.9.9.9:\u00b2")).lines[0]
    assert (await execute(node, "/unblock 127.0.0.1")).lines == ["unblocked 127.0.0.1"]
    assert (await execute(node, "/blacklist")).lines == ["nobody is blacklisted"]


async def test_the_blacklist_expires(nursery, autojump_clock):
    tiny = FloodConfig(conn_burst=20, conn_rate=10, penalty_limit=5, blacklist_for=60)
    node = await flood_node(nursery, flood=tiny)
    conn = await origin(node)
    with trio.fail_after(TIMEOUT):
        await send(conn, *(wire(f"flood {i}") for i in range(100)))
        with contextlib.suppress(trio.BrokenResourceError):  # a reset: our messages unread
            assert await eof(conn)  # cut: EOF
    assert len(node.engine.flood.blacklist.entries(trio.current_time())) == 1
    await trio.sleep(59)
    assert len(node.engine.flood.blacklist.entries(trio.current_time())) == 1
    await trio.sleep(2)
    assert node.engine.flood.blacklist.entries(trio.current_time()) == []


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
            assert await eof(bad)
        good = await origin(node)  # loopback is shared: the next connection is welcome
        await send(good, wire("still here"))
        await box.wait_for(lambda got: got == ["still here"])
    assert node.stats.invalid == DEFAULTS.penalty_limit + 1  # the last one used up the credit
    (listed,) = (await execute(node, "/blacklist")).lines[1:]
    assert listed.startswith(
        "  host 127.0.0.1: 101 invalid messages (claiming to be from 127.0.0.1:9"
    )
