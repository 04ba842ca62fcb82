"""WS /api/feed: what a page is told on connect and as things happen; refusals; shutdown."""

from __future__ import annotations

import re

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, ConnectionRejected

from whisper.events import Delivered
from whisper.message import Message
from whisper.web.bridge import Bridge
from whisper.web.hub import Hub, Listener
from whisper.web.store import MessageRing

from .helpers import origin, send, sink, start_node, wire
from .webhelpers import web_node

TIMEOUT = 10


@pytest.fixture
async def web(nursery):
    async with web_node(nursery, nick="alice") as w:
        yield w


async def test_a_feed_says_who_we_are_then_every_message_as_it_arrives(web):
    with trio.fail_after(TIMEOUT):
        async with web.feed() as feed:
            me = await feed.next()
            assert me == {"Event": "me", "Nick": "alice", "Addr": web.node.addr, "Next": 0}
            assert (await feed.next())["Event"] == "peers"
            users = await feed.next()
            assert [(u["Nick"], u["You"]) for u in users["online"]] == [("alice", True)]
            assert users["heard"] == []
            peer = await origin(web.node)
            await send(peer, wire("<script>alert(1)</script>", nick="bob"))
            message = await feed.until("message")
            assert message["Body"] == "<script>alert(1)</script>" and message["Seq"] == 1
            users = await feed.until("users")  # heard, but not online by presence
            assert [u["Nick"] for u in users["heard"]] == ["bob"]
            web.node.say("mine")
            assert (await feed.until("message"))["Own"] is True


async def online_nicks(feed) -> list[str]:
    """The nicks online by presence in the feed's next ``users`` event."""
    return [u["Nick"] for u in (await feed.until("users"))["online"]]


async def test_who_is_online_is_presence_joins_and_leaves(nursery, web):
    with trio.fail_after(TIMEOUT):
        async with web.feed() as feed:
            assert await online_nicks(feed) == ["alice"]
            bob = await start_node(nursery, nick="bob", peers=[web.node.addr])
            assert await online_nicks(feed) == ["alice", "bob"]
            bob.say("hi")  # heard, and online: listed once
            await feed.until("message")
            await bob.farewell()
            while (users := await feed.until("users"))["online"][1:]:
                pass
            assert [u["Nick"] for u in users["heard"]] == ["bob"]  # gone: heard only


async def test_recent_history_on_open_and_resuming_after_a_cursor(web):
    for i in range(3):
        web.node.say(f"m{i}")
    with trio.fail_after(TIMEOUT):
        async with web.feed() as feed:
            bodies = [(await feed.until("message"))["Body"] for _ in range(3)]
        assert bodies == ["m0", "m1", "m2"]
        async with web.feed("?since=2") as feed:
            resumed = await feed.until("message")
        assert resumed["Seq"] == 3 and resumed["Body"] == "m2"


async def test_peer_changes_and_notices_are_sent_once(nursery, web):
    s = await sink(nursery)
    with trio.fail_after(TIMEOUT):
        async with web.feed() as feed:
            await feed.until("users")
            web.node.connect(s.addr)
            await feed.until("notice", Text=f"connected to {s.addr}")
            peers = await feed.until("peers")
            while peers["peers"][0]["State"] != "connected":
                peers = await feed.until("peers")
            assert [(p["Addr"], p["Direction"]) for p in peers["peers"]] == [(s.addr, "out")]
            pushed = []
            listener = next(web.server.hub.listeners())
            original = listener.push
            listener.push = lambda after, line: (pushed.append(line), original(after, line))
            web.server.hub._look()
            web.server.hub._look()  # nothing changed (Since alone does not count)
            assert pushed == []


async def test_a_feed_needs_the_token_and_our_origin(web):
    with trio.fail_after(TIMEOUT):
        with pytest.raises(ConnectionRejected) as refused:
            async with web.feed(headers=[("Origin", "http://evil.example")]):
                pass
        assert refused.value.status_code == 403
        from trio_websocket import open_websocket_url

        with pytest.raises(ConnectionRejected) as refused:
            async with open_websocket_url(f"{web.ws_base}/api/feed"):
                pass
        assert refused.value.status_code == 401
        ours = [("Origin", f"http://127.0.0.1:{web.server.port}")]
        async with web.feed(headers=ours) as feed:
            assert (await feed.next())["Event"] == "me"


async def test_a_closed_feed_is_detached_and_shutdown_closes_feeds_with_1001(web):
    hub = web.server.hub
    with trio.fail_after(TIMEOUT):
        async with web.feed() as feed:
            await feed.next()
            assert len(list(hub.listeners())) == 1
        while list(hub.listeners()):  # the reader saw the close: the handler is gone
            await trio.sleep(0.01)
        async with web.feed() as feed:
            await feed.next()
            web.server.stop()
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await feed.next()
            assert closed.value.reason.code == 1001
        await web.server.stopped.wait()


def delivered(body: str) -> Delivered:
    return Delivered(Message.create(id=body, addr="127.0.0.1:9", body=body))


async def test_a_listener_behind_the_ring_is_told_what_it_missed():
    ring = MessageRing(max_entries=3)
    listener = Listener(0)
    for i in range(5):
        ring.add(delivered(f"m{i}"), 10)
    listener.push(4, '{"Event":"notice"}')
    lines = listener.take(ring)
    assert lines[0] == '{"Event":"missed","Messages":2,"Events":0}'
    assert [line[:40].split('"Seq":')[1].split(",")[0] for line in lines[1:3]] == ["3", "4"]
    assert lines[3] == '{"Event":"notice"}'  # pushed after message 4, before message 5
    assert '"Seq":5' in lines[4] and listener.cursor == 5
    assert listener.take(ring) == []


async def test_listeners_at_one_cursor_share_one_frame_text():
    ring = MessageRing()
    for i in range(3):
        ring.add(delivered(f"m{i}"), 10)
    first, second, behind = Listener(1), Listener(1), Listener(1)
    frame = first.frame(ring)
    assert frame is second.frame(ring)  # made once
    assert frame == "\n".join(behind.take(ring))  # what take says, joined
    assert first.cursor == second.cursor == 3 and first.frame(ring) == ""
    ring.add(delivered("m3"), 10)
    assert '"Body":"m3"' in first.frame(ring) and first.cursor == 4
    second.push(3, '{"Event":"notice"}')  # something else to say: its own frame
    assert second.frame(ring).split("\n")[0] == '{"Event":"notice"}'
    assert second.cursor == 4


async def test_feeds_wait_for_one_shared_tick(nursery, autojump_clock):
    node = await start_node(nursery)
    hub = Hub(Bridge(node), frame_interval=0.02)
    await nursery.start(hub.run)
    woken: list[float] = []

    async def feed() -> None:
        await hub.tick()
        woken.append(trio.current_time())

    start = trio.current_time()
    async with trio.open_nursery() as feeds:
        for _ in range(3):
            feeds.start_soon(feed)
    assert len(woken) == 3 and len(set(woken)) == 1  # one tick woke them all
    assert woken[0] - start <= 0.02 + 1e-9  # the first at once: nobody asked before
    await hub.tick()  # then on the grid
    assert trio.current_time() - woken[0] == pytest.approx(0.02)
    await trio.sleep(1)  # nobody asked for a while: the next at once
    before = trio.current_time()
    await hub.tick()
    assert trio.current_time() == before


async def test_below_its_rate_the_hub_takes_a_message_as_it_comes(nursery, autojump_clock):
    """The hub's rate is a bucket (``RATE_BURST``): under it nothing waits for the batch
    before; past it the hub waits until the bucket has refilled."""
    node = await start_node(nursery)
    hub = Hub(Bridge(node), max_rate=100.0)  # a bucket of 10 messages, 100 a second
    await nursery.start(hub.run)
    node.publish_now([delivered("m0")])
    await trio.testing.wait_all_tasks_blocked()
    await trio.sleep(0.005)
    node.publish_now([delivered("m1")])  # 5 ms later: taken at once, not after 10 ms
    await trio.testing.wait_all_tasks_blocked()
    assert hub.ring.last_seq == 2
    await trio.sleep(1)  # the bucket is full again
    node.publish_now([delivered(f"b{i}") for i in range(50)])  # 40 past the bucket
    await trio.testing.wait_all_tasks_blocked()
    assert hub.ring.last_seq == 52
    start = trio.current_time()
    node.publish_now([delivered("late")])
    while hub.ring.last_seq < 53:
        await hub.wait_for_message(52, 1.0)
    assert trio.current_time() - start == pytest.approx(0.4, abs=0.02)  # 40 at 100 a second


async def test_a_batch_past_half_a_second_of_its_rate_puts_the_hub_behind(nursery, autojump_clock):
    """The start of a blast: its first batch is not shown whole (``BEHIND_PAUSE``)."""
    node = await start_node(nursery)
    hub = Hub(Bridge(node), max_rate=100.0, behind_shown=5)  # 50 in half a second
    await nursery.start(hub.run)
    listener = hub.attach(hub.ring.last_seq)
    node.publish_now([delivered(f"a{i}") for i in range(50)])  # at the limit: all shown
    await trio.testing.wait_all_tasks_blocked()
    assert hub.ring.last_seq == 50 and not hub.behind
    listener.take(hub.ring)
    await trio.sleep(1)
    node.publish_now([delivered(f"b{i}") for i in range(60)])
    await trio.testing.wait_all_tasks_blocked()
    assert hub.behind and hub.ring.last_seq == 55  # the newest 5
    lines = listener.take(hub.ring)
    assert lines[0] == '{"Event":"missed","Messages":55,"Events":0}'
    assert [line.split('"Body":"')[1].split('"')[0] for line in lines[1:]] == [
        f"b{i}" for i in range(55, 60)
    ]


async def test_a_listener_says_how_many_messages_the_hub_skipped():
    ring = MessageRing()
    listener = Listener(0)
    ring.add(delivered("m0"), 10)
    listener.skip(40)
    lines = listener.take(ring)
    assert lines[0] == '{"Event":"missed","Messages":40,"Events":0}'
    assert '"Body":"m0"' in lines[1] and len(lines) == 2
    assert listener.take(ring) == []


async def test_past_its_rate_the_web_skips_messages_and_says_so(nursery):
    """A relay blast: the hub keeps to max_rate; the node drops the rest for it, and feeds
    are told how many, while the relay itself goes on.  Behind, the hub takes a sample;
    once the flood is over it shows every message again."""
    async with web_node(nursery, hub={"max_rate": 20, "buffer": 8, "behind_shown": 2}) as web:
        s = await sink(nursery)
        with trio.fail_after(TIMEOUT):
            async with web.feed() as feed:
                await feed.until("users")
                peer = await origin(web.node)
                await send(peer, wire("hello", addr=s.addr))
                await s.wait_for(lambda s: s.connections == 1)
                await send(peer, *[wire(f"blast {i}") for i in range(200)])
                await s.wait_for(lambda s: "blast 199" in s.bodies)  # all relayed
                seen: dict[str, dict] = {}  # the node's drops, and what the hub skipped
                while not {"notice", "missed"} <= seen.keys():
                    event = await feed.next()
                    if event["Event"] == "missed" or event.get("Warning"):
                        seen[event["Event"]] = event
                assert re.fullmatch(
                    r"this display fell behind: \d+ events were dropped", seen["notice"]["Text"]
                )
                assert seen["missed"]["Messages"] > 0
                while web.server.hub.behind:
                    await trio.sleep(0.05)  # it looks again every BEHIND_PAUSE: a poll
                await send(peer, *[wire(f"after {i}") for i in range(5)])
                bodies = []
                while len(bodies) < 5:
                    if (body := (await feed.until("message"))["Body"]).startswith("after"):
                        bodies.append(body)
                assert bodies == [f"after {i}" for i in range(5)]
        shown = (await web.client.get("/api/messages", params={"limit": 1000})).json()
        assert 0 < len(shown["messages"]) < 100
