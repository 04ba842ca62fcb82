"""Connection slots over real loopback TCP (PROTOCOL.md §5.4): idle connections and fake
listeners that fill every slot do not keep honest newcomers out.  Small tables (8 slots)
keep the attacks cheap; the autojump clock lets the grace periods pass."""

from __future__ import annotations

import contextlib

import pytest
import trio
import trio.testing

from whisper.connmgr import DEFAULT_ACTIVE_FOR, DEFAULT_GRACE
from whisper.peers import ConnectionConfig
from whisper.routing.overlay import MAX_LINKS as OVERLAY_LINKS
from whisper.routing.overlay import OverlayConfig

from .helpers import eof, inbox, origin, outgoing, send, sink, start_node, wire

TIMEOUT = 600  # virtual seconds (autojump clock): the waits here are 5 and 60 s
SLOTS = 8
NOWHERE = "a peer with no address"  # an Addr the node does not dial


def incoming(node) -> int:
    return sum(not p.outgoing for p in node.peers())


async def closed(stream: trio.SocketStream) -> bool:
    """Whether the node has closed ``stream`` (it writes only its banner on an incoming
    connection)."""
    with contextlib.suppress(trio.BrokenResourceError):
        return await eof(stream)
    return True


async def test_idle_connections_do_not_lock_out_an_honest_newcomer(nursery, autojump_clock):
    relay = await sink(nursery)
    node = await start_node(
        nursery, connections=ConnectionConfig(max_incoming=SLOTS), peers=[relay.addr]
    )
    box = await inbox(nursery, node)
    with trio.fail_after(TIMEOUT):
        await relay.wait_for(lambda s: s.connections == 1)
        idle = [await origin(node) for _ in range(SLOTS)]  # they never say anything
        await trio.testing.wait_all_tasks_blocked()
        assert incoming(node) == SLOTS
        assert await closed(await origin(node))  # every slot is new: the newcomer waits
        await trio.sleep(DEFAULT_GRACE)
        newcomer = await origin(node)
        await send(newcomer, wire("hello from a newcomer", addr=NOWHERE))
        await relay.wait_for(lambda s: "hello from a newcomer" in s.bodies)
        assert await closed(idle[0])  # the one idle longest gave way
        second = await origin(node)  # another newcomer: the next idle one gives way,
        await send(second, wire("and another", addr=NOWHERE))  # not the one that spoke
        await send(newcomer, wire("still here", addr=NOWHERE))
        await relay.wait_for(lambda s: {"and another", "still here"} <= set(s.bodies))
        assert await closed(idle[1])
    assert box.bodies == ["hello from a newcomer", "and another", "still here"]
    assert incoming(node) == SLOTS


@pytest.mark.parametrize("announced", ["by a message each", "by discovery"])
async def test_fake_listeners_do_not_keep_real_newcomers_out(nursery, autojump_clock, announced):
    """Fakes that accept (half of them read, half never do) fill every outgoing slot; two
    real newcomers that speak are dialled (once the fakes have been quiet long enough) and
    get relayed messages."""
    node = await start_node(nursery, connections=ConnectionConfig(max_outgoing=SLOTS))
    conn = await origin(node)
    fakes = [await sink(nursery, read=i % 2 == 0) for i in range(SLOTS)]
    with trio.fail_after(TIMEOUT):
        if announced == "by discovery":
            assert all(node.learned(fake.addr) for fake in fakes)
            quiet = DEFAULT_GRACE
        else:
            await send(conn, *(wire("a fake says hi", addr=fake.addr) for fake in fakes))
            quiet = DEFAULT_ACTIVE_FOR
        for fake in fakes:
            await fake.wait_for(lambda s: s.connections == 1)
        newcomers = [await sink(nursery) for _ in range(2)]
        await send(conn, wire("too early", addr=newcomers[0].addr))
        await send(conn, wire("marker", addr=NOWHERE))
        await fakes[0].wait_for(lambda s: "marker" in s.bodies)
        assert set(outgoing(node)) == {fake.addr for fake in fakes}  # every fake is too new
        await trio.sleep(quiet)
        for newcomer in newcomers:
            await send(conn, wire("a real newcomer", addr=newcomer.addr))
        for newcomer in newcomers:
            await newcomer.wait_for(lambda s: s.connections == 1)
        await send(conn, wire("for everyone", addr=NOWHERE))
        for newcomer in newcomers:
            await newcomer.wait_for(lambda s: "for everyone" in s.bodies)
    assert len(outgoing(node)) == SLOTS
    assert {n.addr for n in newcomers} < set(outgoing(node))
    assert {fake.addr for fake in fakes[:2]}.isdisjoint(outgoing(node))  # the oldest gave way


async def banner_then_eof(stream: trio.SocketStream) -> bool:
    """Whether the node wrote only its banner (an overlay peer's) and closed ``stream``."""
    data = b""
    while chunk := await stream.receive_some(1024):
        data += chunk
    return data.startswith(b'{"Speaks":') and data.count(b"\n") == 1


async def test_an_overlay_peer_accepts_at_most_eight_overlay_connections(nursery, autojump_clock):
    """Over real TCP, ``-routing overlay``: ten connections whose hello names routing, from
    peers that are not neighbours; the ninth and tenth take the slots of the two oldest,
    which are closed.  Legacy peers are served as ever: ten Addrs a legacy writer names
    are all dialled, and another legacy connection is let in."""
    node = await start_node(nursery, routing=OverlayConfig())
    speakers = []
    with trio.fail_after(TIMEOUT):
        for i in range(OVERLAY_LINKS + 2):
            speaker = await origin(node)
            hello = {"Ctl": "hello", "Addr": f"127.0.0.1:{41000 + i}", "Speaks": ["routing"]}
            await send(speaker, hello)
            speakers.append(speaker)
        await trio.testing.wait_all_tasks_blocked()
        assert incoming(node) == OVERLAY_LINKS
        for oldest in speakers[:2]:
            assert await banner_then_eof(oldest)
        await send(speakers[-1], wire("the newest is heard", addr=NOWHERE))
        legacy = await origin(node)
        listeners = [await sink(nursery) for _ in range(OVERLAY_LINKS + 2)]
        await send(legacy, *(wire(f"hi from {s.addr}", addr=s.addr) for s in listeners))
        for listener in listeners:
            await listener.wait_for(lambda s: s.connections == 1)
        await listeners[0].wait_for(lambda s: "the newest is heard" in s.bodies)
        await trio.testing.wait_all_tasks_blocked()
    assert incoming(node) == OVERLAY_LINKS + 1
    assert len(outgoing(node)) == OVERLAY_LINKS + 2
