"""Memory budgets on real nodes over loopback: the receive budget drops the connection
holding the most, the send budget cuts the slowest peers' queues and no one else's, and a
listener that keeps stalling is given up on while an honest one gets everything."""

from __future__ import annotations

from collections.abc import Callable

import trio

from whisper import Node
from whisper.backlog import BacklogConfig
from whisper.codec import encode_object
from whisper.peers import ConnectionConfig
from whisper.sendqueue import OVER_BUDGET

from .helpers import eof, inbox, notices, origin, outgoing, send, sink, start_node, wire

TIMEOUT = 20  # nothing here waits this long
MiB = 1024 * 1024


async def quiet_node(nursery: trio.Nursery, **kw) -> Node:
    return await start_node(nursery, discovery=None, **kw)


async def until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await trio.sleep(0.01)


def unfinished(body: str, **kw) -> bytes:
    """A valid message cut before its closing brace: its Body string is complete."""
    data = encode_object(wire(body, **kw))
    assert data.endswith(b"}\n")
    return data[:-2]


async def test_the_connection_holding_the_most_is_dropped_when_the_receive_budget_is_spent(
    nursery,
):
    node = await quiet_node(nursery, connections=ConnectionConfig(receive_budget=4 * MiB))
    budget = node.engine.receive_budget
    box = await inbox(nursery, node)
    texts = await notices(nursery, node)
    small, big, third = await origin(node), await origin(node), await origin(node)
    emoji = "\U0001f600"
    with trio.fail_after(TIMEOUT):
        await small.send_all(unfinished("s" * 100_000))
        await until(lambda: budget.total > 100_000)
        # 500,000 characters with an emoji: 2 MB in Python, from 0.5 MB on the wire
        await big.send_all(unfinished("b" * 500_000 + emoji))
        await until(lambda: budget.total > 2_500_000)
        assert not budget.over() and not node.stats.over_budget
        await third.send_all(unfinished("t" * 200_000 + emoji))  # now over: big goes
        assert await eof(big)
        await until(lambda: any("receive budget" in n for n in texts))
        await small.send_all(b"}")
        await third.send_all(b"}")
        await box.wait_for(lambda bodies: len(bodies) == 2)
    assert node.stats.over_budget == 1
    assert sorted(len(b) for b in box.bodies) == [100_000, 200_001]
    assert budget.total < 100  # nothing unfinished: the last bytes read
    (drop,) = [n for n in texts if "receive budget" in n]
    assert drop.startswith("dropped 127.0.0.1:") and "holds the most" in drop


async def test_the_send_budget_cuts_the_slowest_queues_and_the_others_get_everything(nursery):
    node = await quiet_node(
        nursery, connections=ConnectionConfig(send_budget=1 * MiB, stall_timeout=1000)
    )
    links = node.engine.table.outgoing
    stalled = [await sink(nursery, read=False, rcvbuf=4096) for _ in range(3)]
    healthy = [await sink(nursery) for _ in range(2)]
    conn = await origin(node)
    filler = "x" * 2000
    total = 4000  # ~8 MB: far more than socket buffers and the send budget hold
    with trio.fail_after(TIMEOUT):
        for s in [*stalled, *healthy]:
            await send(conn, wire("hello", addr=s.addr))
        for s in [*stalled, *healthy]:
            await s.wait_for(lambda s: s.connections == 1)
        for start in range(0, total, 200):  # in rounds the healthy sinks can keep up with
            await send(conn, *(wire(f"{i} {filler}") for i in range(start, start + 200)))
            for s in healthy:
                await s.wait_for(lambda s, n=start + 200: filled(s) >= n)
            assert node.engine.links.send_budget.total <= 1 * MiB
    for s in stalled:
        queue = links[s.addr].queue
        assert queue.dropped > 0 and queue.overflow == OVER_BUDGET  # not its own 8 MiB cap
    for s in healthy:
        assert links[s.addr].queue.dropped == 0
        assert [b.split(" ")[0] for b in s.bodies if b.endswith("x")] == [
            str(i) for i in range(total)
        ]


def filled(s) -> int:
    return sum(1 for b in s.bodies if b.endswith("x"))


async def test_a_listener_that_keeps_stalling_is_given_up_on_while_an_honest_one_gets_all(
    nursery, autojump_clock
):
    """A stall is detected after 10 s without progress, so the link has always been up the
    10 s that made it a success: a listener that never reads was redialled, and replayed
    the backlog, every 10.5 s for ever."""
    node = await quiet_node(
        nursery,
        connections=ConnectionConfig(max_failures=3),
        backlog=BacklogConfig(entries=100, max_bytes=8 * MiB),
    )
    texts = await notices(nursery, node)
    honest = await sink(nursery)
    stalled = await sink(nursery, read=False, rcvbuf=4096)
    conn = await origin(node)
    ticks: list[str] = []
    with trio.fail_after(TIMEOUT * 20):  # virtual time: the autojump clock skips ahead
        await send(conn, wire("hello", addr=honest.addr))
        await honest.wait_for(lambda s: s.connections == 1)
        # 4 MB in the backlog, more than the kernel buffers for the listener that never
        # reads; written by the honest peer, so never sent back to it (PROTOCOL.md §5.1, §7.3)
        await send(conn, *(wire(f"{i} " + "y" * 100_000, addr=honest.addr) for i in range(40)))
        await send(conn, wire("hello", addr=stalled.addr))
        while not any(n.startswith(f"gave up on {stalled.addr}: stalled") for n in texts):
            ticks.append(f"tick {len(ticks)}")
            await send(conn, wire(ticks[-1], addr="tick-origin"))
            await trio.sleep(1)
        await honest.wait_for(lambda s: ticks[-1] in s.bodies)
    assert stalled.connections == 3  # each a failure, though each was up over 10 s
    assert stalled.addr not in outgoing(node) and stalled.addr in node.engine.table.given_up()
    assert len(ticks) > 30  # three stalls of 10 s
    assert honest.connections == 1
    assert [b for b in honest.bodies if b.startswith("tick")] == ticks
