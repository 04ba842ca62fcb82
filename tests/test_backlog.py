"""Backlog (extension 11): the pure backlog, display order, and real nodes replaying on loopback."""

from __future__ import annotations

import time

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from whisper.backlog import (
    HISTORY_AGE,
    REPLAY_MAX_AGE,
    Backlog,
    BacklogConfig,
    is_history,
    marked,
    replay_age,
)
from whisper.codec import decode_all
from whisper.display import in_display_order, take_batch
from whisper.events import Delivered, Event, Notice, PeerLinked, PeerLost
from whisper.headless import format_line
from whisper.message import Message
from whisper.peers import ConnectionConfig

from .helpers import LOCAL, inbox, origin, send, sink, start_node, wire

TIMEOUT = 10
NOW = 1_800_000_000.0


def msg(body: str, *, age: float = 0.0, addr: str = "10.0.0.1:1", ts: int | None = -1) -> Message:
    stamp = int((NOW - age) * 1000) if ts == -1 else ts
    return Message.create(id=f"id-{body}", addr=addr, body=body, timestamp=stamp)


def backlog(n: int = 50, nbytes: int = 1 << 20, max_age: float = REPLAY_MAX_AGE) -> Backlog:
    return Backlog(n, nbytes, clock=lambda: NOW, max_age=lambda: max_age)


# -- the pure backlog ------------------------------------------------------------------


def test_keeps_the_last_n_and_at_most_max_bytes() -> None:
    b = backlog(n=3, nbytes=250)
    for i in range(5):
        b.add(msg(f"m{i}"), 100)
    assert [m.body for m in b.replay("x", now=NOW, max_age=60)] == ["m3", "m4"]  # bytes bound
    assert len(b) == 2 and b.nbytes == 200
    b.add(msg("small1"), 10)
    b.add(msg("small2"), 10)
    assert [m.body for m in b.replay("x", now=NOW, max_age=60)] == ["m4", "small1", "small2"]


def test_keeps_nothing_it_cannot_replay_safely() -> None:
    b = backlog(nbytes=1000)
    assert not b.add(msg("no timestamp", ts=None), 10)  # nothing would ever make it stale
    assert not b.add(msg("zero timestamp", ts=0), 10)
    assert not b.add(msg("huge"), 1001)
    off = backlog(n=0)
    assert not off.add(msg("off"), 10) and len(off) == 0


def test_replay_is_oldest_first_never_the_peers_own_and_never_stale() -> None:
    b = backlog()
    b.add(msg("newer", age=10), 50)
    b.add(msg("older", age=20), 50)  # arrived late: replayed in Timestamp order
    b.add(msg("theirs", age=5, addr="10.0.0.9:9"), 50)
    b.add(msg("stale", age=REPLAY_MAX_AGE + 1), 50)
    b.add(msg("ahead", age=-30), 50)  # 30 s in the future: accepted when it came, so kept
    got = b.replay("10.0.0.9:9", now=NOW, max_age=REPLAY_MAX_AGE)
    assert [m.body for m in got] == ["older", "newer", "ahead"]


def test_replay_age_leaves_a_margin_inside_our_window() -> None:
    assert replay_age(600.0, 60.0) == REPLAY_MAX_AGE  # whisper: 9-minute window, 8 minutes
    assert replay_age(300.0, 60.0) == 180.0  # the seen cache forgot early: less
    assert replay_age(30.0, 60.0) == 0.0


def test_a_link_is_replayed_only_what_its_queue_does_not_hold() -> None:
    b = backlog()
    b.add(msg("before the link", age=3), 50)
    link = b.for_link("10.0.0.9:9")
    b.add(msg("queued while connecting", age=2), 50)  # forwarded into the link's queue
    first = decode_all(b"".join(link.connected()))
    assert [o["Body"] for o in first] == ["before the link"]
    assert all(o["History"] is True for o in first)
    b.add(msg("sent live", age=1), 50)
    link.lost()
    b.add(msg("queued during the outage"), 50)
    again = [o["Body"] for o in decode_all(b"".join(link.connected()))]  # replayed again
    assert again == ["before the link", "queued while connecting", "sent live"]


def test_the_replayed_object_keeps_every_key_and_adds_the_mark() -> None:
    m = Message.create(
        id="i", addr="a:1", body="b", nick="n", timestamp=5, extra={"Unknown": [1, {"x": 2}]}
    )
    obj = marked(m)
    assert obj == {**m.fields, "History": True}
    assert list(obj)[-1] == "History" and "History" not in m.fields


def test_a_replay_never_exceeds_the_message_size_limit() -> None:
    b = Backlog(clock=lambda: NOW, max_size=300)
    b.add(msg("x" * 200), 250)  # with the mark added it no longer fits
    b.add(msg("short"), 80)
    assert [o["Body"] for o in decode_all(b"".join(b.encoded_replay("p", b.next_seq)))] == ["short"]


def test_a_replay_is_encoded_once_and_the_same_bytes_go_to_every_link() -> None:
    """126 links reconnecting every 10 s each re-encoded (and joined) the whole backlog:
    four 1 MB messages cost 4 MB a link, 543 MB in all."""
    b = backlog()
    b.add(msg("one", age=3), 50)
    b.add(msg("two", age=2), 50)
    first, second = b.for_link("10.0.0.8:8"), b.for_link("10.0.0.9:9")
    a, c = list(first.connected()), list(second.connected())
    assert [o["Body"] for o in decode_all(b"".join(a))] == ["one", "two"]
    assert len(a) == 2 and all(x is y for x, y in zip(a, c, strict=True))
    first.lost()
    assert all(x is y for x, y in zip(first.connected(), a, strict=True))  # a reconnection too


def test_a_link_takes_its_replay_a_message_at_a_time() -> None:
    """A link stalled in its replay holds the message it is writing, not the backlog: one
    the backlog drops before the link gets to it is not replayed to it."""
    b = backlog(n=2)
    b.add(msg("one", age=3), 50)
    b.add(msg("two", age=2), 50)
    replay = b.for_link("10.0.0.9:9").connected()
    assert decode_all(next(replay))[0]["Body"] == "one"
    b.add(msg("three", age=1), 50)
    b.add(msg("four"), 50)  # "two" is gone before the link wrote it
    assert list(replay) == []
    assert [m.body for m in b.replay("x", now=NOW, max_age=60)] == ["three", "four"]


def test_what_shows_as_history() -> None:
    marked_now = Message.from_wire({**msg("m").fields, "History": True})
    assert is_history(marked_now, NOW)
    assert not is_history(Message.from_wire({**msg("m").fields, "History": "yes"}), NOW)
    assert not is_history(msg("just said", age=5), NOW)
    assert is_history(msg("relayed stripped by a Go peer", age=HISTORY_AGE + 1), NOW)
    assert not is_history(msg("no timestamp", ts=None), NOW)


@given(
    st.integers(0, 20),
    st.integers(0, 2000),
    st.lists(st.tuples(st.integers(0, 600), st.booleans()), max_size=60),
)
def test_bounds_always_hold(n: int, nbytes: int, adds: list[tuple[int, bool]]) -> None:
    b = Backlog(n, nbytes)
    kept: list[tuple[str, int]] = []
    for i, (size, stamped) in enumerate(adds):
        m = msg(f"m{i}", ts=None if not stamped else int(NOW * 1000) + i)
        if b.add(m, size):
            kept.append((m.body, size))
    assert len(b) <= 2 * n and b.nbytes <= nbytes
    survivors = [m.body for m in b.replay("x", now=NOW, max_age=1e9)]
    assert len(survivors) <= n
    assert survivors == [body for body, _ in kept][len(kept) - len(survivors) :]  # newest
    assert b.nbytes == sum(size for body, size in kept if body in survivors)


def test_a_returning_peers_own_messages_do_not_count_towards_the_n() -> None:
    bob, alice, carol = "10.0.0.2:2", "10.0.0.1:1", "10.0.0.3:3"
    b = backlog(n=50)
    for i in range(10):
        b.add(msg(f"alice {i}", addr=alice), 50)
    for i in range(5):
        b.add(msg(f"carol {i}", addr=carol), 50)
    for i in range(60):  # bob pastes 60 lines, then leaves and comes back
        b.add(msg(f"bob {i}", addr=bob), 50)
    to_bob = [m.body for m in b.replay(bob, now=NOW, max_age=60)]
    assert to_bob == [f"alice {i}" for i in range(10)] + [f"carol {i}" for i in range(5)]
    to_alice = [m.body for m in b.replay(alice, now=NOW, max_age=60)]
    assert to_alice == [f"bob {i}" for i in range(10, 60)]  # the last 50 that are not hers


@given(
    st.integers(1, 6),
    st.lists(st.sampled_from(["10.0.0.1:1", "10.0.0.2:2", "10.0.0.3:3", "10.0.0.4:4"])),
)
def test_every_peer_is_replayed_the_last_n_messages_not_its_own(n: int, authors: list[str]) -> None:
    b = backlog(n=n, nbytes=1 << 30)
    sent = [msg(f"m{i}", addr=a, age=len(authors) - i) for i, a in enumerate(authors)]
    for m in sent:
        b.add(m, 10)
    assert len(b) <= 2 * n
    for peer in {"10.0.0.1:1", "10.0.0.2:2", "10.0.0.3:3", "10.0.0.4:4"}:
        expected = [m.body for m in sent if m.addr != peer][-n:]
        assert [m.body for m in b.replay(peer, now=NOW, max_age=1e9)] == expected


# -- display order -----------------------------------------------------------------------


def delivered(body: str, *, age: float, history: bool) -> Delivered:
    return Delivered(msg(body, age=age), history=history)


def test_history_comes_first_in_timestamp_order() -> None:
    live = delivered("live", age=0, history=False)
    notice = Notice("connected")
    h1, h2 = delivered("h1", age=30, history=True), delivered("h2", age=20, history=True)
    assert in_display_order([live, h2, notice, h1]) == [h1, h2, live, notice]
    assert in_display_order([live, notice]) == [live, notice]


async def test_a_burst_of_history_is_gathered_before_it_is_shown(autojump_clock) -> None:
    send_end, receive_end = trio.open_memory_channel[Event](100)
    h = [delivered(f"h{i}", age=100 - i, history=True) for i in range(4)]

    async def two_peers_replay() -> None:
        await send_end.send(h[3])
        await send_end.send(h[1])
        await trio.sleep(0.1)  # the second peer's replay, a moment later
        await send_end.send(h[2])
        await send_end.send(h[0])
        await trio.sleep(1.0)
        await send_end.send(delivered("later", age=0, history=False))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(two_peers_replay)
        first = await receive_end.receive()
        batch = await take_batch(receive_end, [first])
        assert batch == h
        assert [e.message.body for e in await take_batch(receive_end, [])] == []
        assert (await receive_end.receive()).message.body == "later"


def test_headless_marks_history_in_text_and_json() -> None:
    event = Delivered(msg("hello", age=300), history=True)
    stamp = time.strftime("%H:%M", time.localtime(NOW - 300))
    assert format_line(event, False) == f"[history {stamp}] 10.0.0.1:1: hello\n"
    assert '"History": true' in format_line(event, True)
    assert format_line(Delivered(msg("hi")), False) == "10.0.0.1:1: hi\n"


# -- real nodes on loopback ----------------------------------------------------------------


async def test_a_dialled_peer_is_replayed_recent_messages_oldest_first(nursery) -> None:
    clock = [time.time()]
    node = await start_node(nursery, wall_clock=lambda: clock[0], nick="a")
    s = await sink(nursery)
    conn = await origin(node)

    def stamp() -> int:
        return int(clock[0] * 1000)

    node.say("old: stale by the time of the replay")
    clock[0] += REPLAY_MAX_AGE + 20
    node.say("ours")
    x = "127.0.0.1:9"
    with trio.fail_after(TIMEOUT):
        await send(conn, wire("from x", addr=x, Timestamp=stamp()))
        await send(conn, wire("from the sink itself", addr=s.addr, Timestamp=stamp()))  # dial
        await s.wait_for(lambda s: len(s.objects) >= 2)
        node.say("live")
        await s.wait_for(lambda s: "live" in s.bodies)
    assert s.bodies == ["ours", "from x", "live"]
    assert [o.get("History") for o in s.objects] == [True, True, None]
    assert s.connections == 1


async def test_newcomers_see_recent_history_once_in_order(nursery) -> None:
    a = await start_node(nursery, nick="a")
    for body in ("one", "two", "three"):
        a.say(body)  # a has no peers yet: these go to the backlog only
    b = await start_node(nursery, nick="b", peers=[a.addr])
    box_b = await inbox(nursery, b)
    with trio.fail_after(TIMEOUT):
        b.say("hi from b")  # a hears it, dials b back and replays first
        await box_b.wait_for(lambda bodies: "three" in bodies)
    assert [(d.message.body, d.history) for d in box_b.messages] == [
        ("one", True),
        ("two", True),
        ("three", True),
    ]
    c = await start_node(nursery, nick="c", peers=[a.addr])
    box_c = await inbox(nursery, c)
    with trio.fail_after(TIMEOUT), b.subscribe() as b_events:
        c.say("hi, I am new")  # a, then b (told by a), dial c back: both replay
        async for event in b_events:
            if isinstance(event, PeerLinked) and event.addr == c.addr:
                break
        await box_c.wait_for(lambda bodies: "hi from b" in bodies)
        await trio.testing.wait_all_tasks_blocked(cushion=0.1)
    assert [(d.message.body, d.history) for d in box_c.messages] == [
        ("one", True),
        ("two", True),
        ("three", True),
        ("hi from b", True),
    ]  # each once, oldest first; "hi, I am new" never replayed to its author
    assert c.stats.duplicates >= 4  # the second replay was dropped by c's seen cache


async def test_each_reconnection_is_replayed_without_repeating_on_one_connection(
    nursery,
) -> None:
    node = await start_node(nursery, connections=ConnectionConfig(backoff_base=0.05))
    connections: list[list[dict]] = []
    changed = trio.Event()
    close_first = trio.Event()

    async def serve(stream: trio.SocketStream) -> None:
        nonlocal changed
        objects: list[dict] = []
        connections.append(objects)
        async with stream:
            first = len(connections) == 1
            while True:
                with trio.move_on_after(0.05 if first else 1e9):
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    objects.extend(o for o in decode_all(data) if isinstance(o, dict))
                    changed.set()
                    changed = trio.Event()
                if first and close_first.is_set():
                    return

    listeners = await trio.open_tcp_listeners(0, host=LOCAL)
    addr = f"{LOCAL}:{listeners[0].socket.getsockname()[1]}"
    nursery.start_soon(trio.serve_listeners, serve, listeners)

    async def until(predicate) -> None:
        while not predicate():
            await changed.wait()

    with node.subscribe() as events, trio.fail_after(TIMEOUT):
        node.say("m1")
        node.connect(addr)
        await until(lambda: connections and len(connections[0]) == 1)
        node.say("m2")
        await until(lambda: len(connections[0]) == 2)
        close_first.set()
        async for event in events:
            if isinstance(event, PeerLost) and event.addr == addr:
                break
        node.say("m3")  # queued for the link while it is down
        await until(lambda: len(connections) == 2 and len(connections[1]) == 3)
    first, second = connections
    assert [(o["Body"], o.get("History")) for o in first] == [("m1", True), ("m2", None)]
    assert [(o["Body"], o.get("History")) for o in second] == [
        ("m1", True),
        ("m2", True),
        ("m3", None),
    ]


async def test_backlog_zero_replays_nothing(nursery) -> None:
    node = await start_node(nursery, backlog=BacklogConfig(entries=0))
    s = await sink(nursery)
    node.say("not kept")
    node.connect(s.addr)
    with trio.fail_after(TIMEOUT):
        await s.wait_for(lambda s: s.connections == 1)
        node.say("live")
        await s.wait_for(lambda s: bool(s.objects))
    assert s.bodies == ["live"]


async def test_a_returning_peer_that_said_much_still_hears_what_others_said(nursery) -> None:
    node = await start_node(nursery, backlog=BacklogConfig(entries=50))
    bob = await sink(nursery)  # bob's listening side; he talks to the node on an origin
    for body in ("one", "two", "three"):
        node.say(body)
    conn = await origin(node)
    heard = await inbox(nursery, node)
    with trio.fail_after(TIMEOUT):
        await send(conn, *(wire(f"bob's line {i}", addr=bob.addr) for i in range(60)))
        await heard.wait_for(lambda bodies: len(bodies) == 60)  # the first: dial bob back
        await bob.wait_for(lambda s: s.connections == 1 and "three" in s.bodies)
        node.disconnect(bob.addr)  # bob leaves, and comes back
        before = len(bob.objects)
        node.connect(bob.addr)
        await bob.wait_for(lambda s: s.connections == 2 and "three" in s.bodies[before:])
        node.say("live")
        await bob.wait_for(lambda s: "live" in s.bodies[before:])
    again = bob.objects[before:]
    assert [(o["Body"], o.get("History")) for o in again] == [
        ("one", True),
        ("two", True),
        ("three", True),
        ("live", None),
    ]  # his own 60 lines took no place among the 50 replayed to him
