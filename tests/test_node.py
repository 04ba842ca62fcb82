"""Nodes over real loopback TCP: the trio shell around the engine.

Mesh formation, bytes from a real Go peer, malformed input on a socket, stalled and slow
peers, dial failures, connection caps.  The relay rules themselves (dedupe, hash and
timestamp checks, routing, dial-back) are tested without sockets in ``test_engine.py``.
"""

from __future__ import annotations

import contextlib

import trio
import trio.testing

from whisper import Config, Node
from whisper.codec import Limits
from whisper.events import GaveUp, PeerLost
from whisper.link import send_all
from whisper.peers import ConnectionConfig

from .helpers import (
    LOCAL,
    connected,
    dumps,
    inbox,
    linked,
    origin,
    outgoing,
    send,
    sink,
    start_node,
    wire,
)

TIMEOUT = 20  # generous: the machine is small and shared; nothing here waits this long


async def test_mesh_forms_and_every_message_arrives_exactly_once(nursery):
    a = await start_node(nursery, nick="a")
    b = await start_node(nursery, nick="b", peers=[a.addr])
    c = await start_node(nursery, nick="c", peers=[b.addr])
    d = await start_node(nursery, nick="d", peers=[c.addr])
    e = await start_node(nursery, nick="e", peers=[d.addr])
    nodes = [a, b, c, d, e]
    boxes = [await inbox(nursery, n) for n in nodes]
    with trio.fail_after(TIMEOUT):
        # Those with a link speak first; everyone learns the speakers from Addr.
        for node in [e, d, c, b, a]:
            body = f"hello from {node.nick}"
            node.say(body)
            for other, box in zip(nodes, boxes, strict=True):
                if other is not node:
                    await box.wait_for(lambda bodies, body=body: body in bodies)
        for node in nodes:
            node.say(f"round two from {node.nick}")
        for box in boxes:
            await box.wait_for(lambda bodies: sum(x.startswith("round two") for x in bodies) == 4)
        await trio.testing.wait_all_tasks_blocked(cushion=0.1)
    for node, box in zip(nodes, boxes, strict=True):
        others = [n.nick for n in nodes if n is not node]
        expected = sorted(f"{w} from {o}" for w in ("hello", "round two") for o in others)
        assert sorted(box.bodies) == expected, node.nick  # each exactly once
        assert {m.message.nick for m in box.messages} == set(others)
        assert sorted(connected(node)) == sorted(n.addr for n in nodes if n is not node)
    assert sum(n.stats.duplicates for n in nodes) > 0  # the flood did echo; dedupe held


async def test_text_with_lone_surrogates_is_sent_as_valid_utf8(nursery):
    """The terminal UI decodes undecodable input bytes to lone surrogates ("café" typed in
    Latin-1); -nick gets them from argv.  They went out as invalid UTF-8, so every peer dropped
    the connection, and the backlog replayed them on every reconnection for 8 minutes."""
    a = await start_node(nursery, nick="ph\udcefl")
    b = await start_node(nursery)
    box = await inbox(nursery, b)
    a.connect(b.addr)
    with trio.fail_after(TIMEOUT):
        await linked(a, b.addr)
        a.say("caf\udce9")
        a.say("after")
        await box.wait_for(lambda bodies: "after" in bodies)
    assert box.bodies == ["caf\ufffd", "after"]  # as peers decode it: the ID still matches
    assert box.messages[0].message.nick == "ph\ufffdl"
    assert b.stats.violations == 0 and b.stats.invalid == 0


GARBAGE = {
    "malformed JSON": b'{"ID":"1",,}',
    "invalid UTF-8": b'{"ID":"1","Addr":"a:1","Body":"\xff\xfe"}',
    "top-level array": b"[1,2,3]",
    "top-level string": b'"hello" ',
    "deep nesting": b'{"a":' + b"[" * 100_000,
    "oversized": b'{"ID":"1","Addr":"a:1","Body":"' + b"x" * 300_000 + b'"}',
    "too many values": b'{"a":[' + b"0," * 50_000 + b"0]}",
}


async def test_malformed_input_drops_only_that_connection(nursery):
    node = await start_node(nursery, limits=Limits(max_size=64 * 1024))
    box = await inbox(nursery, node)
    s = await sink(nursery)
    good = await origin(node)
    with trio.fail_after(TIMEOUT):
        await send(good, wire("hello", addr=s.addr))
        await s.wait_for(lambda s: s.connections == 1)
        for name, garbage in GARBAGE.items():
            bad = await origin(node)
            await send(bad, wire(f"before {name}"))
            with contextlib.suppress(trio.BrokenResourceError):  # dropped mid-write: fine too
                await bad.send_all(garbage)
            # The node closes the bad connection: we read EOF (or a reset).
            try:
                while await bad.receive_some(1024):
                    pass
            except trio.BrokenResourceError:
                pass
            await bad.aclose()
            await send(good, wire(f"after {name}"))
            await s.wait_for(lambda s, name=name: f"after {name}" in s.bodies)
    assert node.stats.violations == len(GARBAGE)
    for name in GARBAGE:
        assert f"before {name}" in box.bodies and f"after {name}" in box.bodies


async def test_truncated_message_at_eof_is_logged_not_fatal(nursery):
    node = await start_node(nursery)
    box = await inbox(nursery, node)
    bad = await origin(node)
    await bad.send_all(dumps(wire("complete")) + b'{"ID":"half')
    await bad.aclose()
    conn = await origin(node)
    with trio.fail_after(TIMEOUT):
        await send(conn, wire("marker"))
        await box.wait_for(lambda bodies: "marker" in bodies)
    assert box.bodies[0] == "complete"


async def test_stalled_peer_does_not_stall_the_others(nursery):
    node = await start_node(
        nursery, connections=ConnectionConfig(queue_bytes=256 * 1024, stall_timeout=1000)
    )
    stalled = await sink(nursery, read=False, rcvbuf=4096)
    healthy = [await sink(nursery) for _ in range(3)]
    conn = await origin(node)
    with trio.fail_after(TIMEOUT):
        for s in [stalled, *healthy]:
            await send(conn, wire("hello", addr=s.addr))
        for s in healthy:
            await s.wait_for(lambda s: s.connections == 1)
        await stalled.wait_for(lambda s: s.connections == 1)
        filler = "x" * 2000
        total = 4000  # ~8 MB: far more than socket buffers and the stalled queue hold
        for start in range(0, total, 200):  # in rounds the healthy sinks can keep up with
            await send(conn, *(wire(f"{i} {filler}") for i in range(start, start + 200)))
            for s in healthy:
                await s.wait_for(lambda s, n=start + 200: filled(s) >= n)
    queue = node.engine.table.outgoing[stalled.addr].queue
    assert queue.dropped > 0 and queue.nbytes <= 256 * 1024
    for s in healthy:
        assert [b.split(" ")[0] for b in s.bodies if b.endswith("x")] == [
            str(i) for i in range(total)
        ]


def filled(s) -> int:
    return sum(1 for b in s.bodies if b.endswith("x"))


async def test_stalled_peer_is_disconnected_after_stall_timeout(nursery, autojump_clock):
    node = await start_node(
        nursery, connections=ConnectionConfig(queue_bytes=256 * 1024, stall_timeout=5)
    )
    box = await inbox(nursery, node)
    lost = []

    async def watch(task_status=trio.TASK_STATUS_IGNORED):
        with node.subscribe() as events:
            task_status.started()
            async for event in events:
                if isinstance(event, PeerLost):
                    lost.append(event)

    await nursery.start(watch)
    stalled = await sink(nursery, read=False, rcvbuf=4096)
    conn = await origin(node)
    await send(conn, wire("hello", addr=stalled.addr))
    with trio.fail_after(TIMEOUT):
        await stalled.wait_for(lambda s: s.connections == 1)
        for i in range(2000):
            await send(conn, wire(f"{i} " + "x" * 2000))
        await box.wait_for(lambda bodies: len(bodies) == 2001)
        while not lost:
            await trio.sleep(1)  # virtual time: the autojump clock skips ahead
    assert lost[0].addr == stalled.addr and lost[0].reason.startswith("stalled")


async def test_a_slow_peer_that_keeps_reading_is_not_stalled(autojump_clock):
    """PROTOCOL.md §5.3: a write that makes *no progress* for the stall timeout.  A 1 MiB
    write (a backlog replay of a few files) to a peer reading 16 KiB a second takes 64 s."""
    ours, theirs = trio.testing.lockstep_stream_pair()
    received = 0

    async def read_slowly() -> None:
        nonlocal received
        while True:
            await trio.sleep(1)
            received += len(await theirs.receive_some(16 * 1024))

    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_slowly)
            assert await send_all(ours, b"x" * (1024 * 1024), stall_timeout=10) is None
            nursery.cancel_scope.cancel()
        assert received == 1024 * 1024
        before = trio.current_time()
        error = await send_all(ours, b"x", stall_timeout=10)  # nobody reads any more: stalled
    assert error is not None and error.startswith("stalled")
    assert trio.current_time() - before == 10


async def test_a_host_name_that_cannot_be_encoded_fails_its_link_not_the_node(
    nursery, autojump_clock
):
    """/connect ..:5 (or a 64-character label, or a NUL) made the IDNA codec raise
    UnicodeError in the link's task, which took the whole node down."""
    node = await start_node(nursery)
    names = ["..", "x" * 64 + ".example", "a\x00b"]
    with node.subscribe() as events, trio.fail_after(TIMEOUT * 10):
        for name in names:
            assert node.connect(f"{name}:5")
        gave_up = set()
        async for event in events:
            if isinstance(event, GaveUp):
                gave_up.add(event.addr)
                if len(gave_up) == len(names):
                    break
    node.say("still running")


async def test_refused_dial_never_blocks_and_gives_up(nursery):
    closed = trio.socket.socket()
    await closed.bind((LOCAL, 0))
    dead = f"{LOCAL}:{closed.getsockname()[1]}"
    closed.close()
    node = await start_node(
        nursery, peers=[dead], connections=ConnectionConfig(backoff_base=0.01, max_failures=3)
    )
    s = await sink(nursery)
    conn = await origin(node)
    with node.subscribe() as events, trio.fail_after(TIMEOUT):
        await send(conn, wire("hello", addr=s.addr), wire("to a dead addr", addr=dead))
        await s.wait_for(lambda s: "to a dead addr" in s.bodies)
        while dead in outgoing(node):
            await events.receive()
    assert dead in node.engine.table.given_up()


async def test_user_connect_and_disconnect(nursery):
    a = await start_node(nursery)
    b = await start_node(nursery)
    box = await inbox(nursery, b)
    with trio.fail_after(TIMEOUT):
        assert a.connect(b.addr)
        assert not a.connect(b.addr)
        await linked(a, b.addr)
        a.say("over the link")
        await box.wait_for(lambda bodies: "over the link" in bodies)
        assert a.disconnect(b.addr)
        assert not a.disconnect(b.addr)
        while any(not p.outgoing for p in b.peers()):  # b sees the EOF: no event, so a poll
            await trio.sleep(0.01)
    assert not outgoing(a)


async def test_user_disconnects_an_incoming_connection(nursery):
    a = await start_node(nursery)
    b = await start_node(nursery, peers=[a.addr])
    with trio.fail_after(TIMEOUT):
        await linked(b, a.addr)
        while not (remote := [p.addr for p in a.peers() if not p.outgoing]):
            await trio.sleep(0.01)  # a learns of the connection with no event: a poll
        with b.subscribe() as events:
            assert a.disconnect(remote[0])
            assert remote[0] not in [p.addr for p in a.peers()]
            while not isinstance(await events.receive(), PeerLost):
                pass  # b's link saw the close
        assert not a.disconnect(remote[0])


async def test_go_reference_bytes(nursery, go_wire):
    """The exact bytes a Go peer wrote: nicks, escapes, seconds timestamps all come through."""
    node = await start_node(nursery, nick="bob", wall_clock=lambda: 1795265846 + 5)
    box = await inbox(nursery, node)
    s = await sink(nursery)
    conn = await origin(node)
    with trio.fail_after(TIMEOUT):
        await conn.send_all(go_wire.replace(b"127.0.0.1:47601", s.addr.encode()))
        await box.wait_for(lambda bodies: len(bodies) == 5)
        await s.wait_for(lambda s: s.connections == 1)
        node.say("reply")
        await s.wait_for(lambda s: "reply" in s.bodies)
    assert [m.message.sender for m in box.messages] == ["alice"] * 4 + ["127.0.0.1:1"]
    assert box.messages[1].message.body == 'x<y> & "q" \\ héllo ✓ 日本 tab\there'
    reply = s.objects[-1]
    assert reply["omitempty"] == "bob"  # the key the Go peer reads its nick from
    assert type(reply["Timestamp"]) is int and reply["Body"] == "reply"
    assert list(reply)[:3] == ["ID", "Addr", "Body"]


async def test_a_peer_that_hangs_up_at_once_is_given_up_on(nursery):
    """Not redialled (and sent our backlog) twice a second for ever."""
    accepted = 0

    async def hang_up(stream: trio.SocketStream) -> None:
        nonlocal accepted
        accepted += 1
        await stream.aclose()

    listeners = await trio.open_tcp_listeners(0, host=LOCAL)
    await nursery.start(trio.serve_listeners, hang_up, listeners)
    rude = f"{LOCAL}:{listeners[0].socket.getsockname()[1]}"
    node = Node(
        Config(host=LOCAL, port=0, connections=ConnectionConfig(backoff_base=0.01, max_failures=4))
    )
    with node.subscribe() as events:
        await nursery.start(node.run)
        node.connect(rude)
        node.say("something to replay")
        with trio.fail_after(TIMEOUT):
            async for event in events:
                if isinstance(event, GaveUp) and event.addr == rude:
                    break
    assert rude in node.engine.table.given_up()
    assert accepted <= 4


async def test_incoming_connections_beyond_the_cap_are_refused(nursery):
    node = await start_node(nursery, connections=ConnectionConfig(max_incoming=2))
    box = await inbox(nursery, node)
    first, second = await origin(node), await origin(node)
    with trio.fail_after(TIMEOUT):
        await send(first, wire("one"))
        await send(second, wire("two"))
        await box.wait_for(lambda bodies: len(bodies) == 2)
        third = await origin(node)
        with contextlib.suppress(trio.BrokenResourceError):
            assert await third.receive_some(1024) == b""  # closed without a word
        await first.aclose()
        while len(node.peers()) != 1:  # the first one's EOF: no event for that, so a poll
            await trio.sleep(0.01)
        fourth = await origin(node)  # a slot is free again
        await send(fourth, wire("four"))
        await box.wait_for(lambda bodies: "four" in bodies)
