"""A front end's inbox: bounded in events and bytes, never blocking the node."""

from __future__ import annotations

import trio
import trio.testing

from whisper.events import Notice
from whisper.subscription import Subscription

from .helpers import inbox, origin, send, start_node, wire


def notice(text: str) -> Notice:
    return Notice(text)


async def test_events_in_order_and_bounded_in_count():
    sub = Subscription(max_events=2, max_bytes=1000)
    assert sub.offer(notice("a"), 1) and sub.offer(notice("b"), 1)
    assert not sub.offer(notice("c"), 1)
    assert sub.receive_nowait().text.startswith("this display fell behind: 1 ")
    assert [sub.receive_nowait().text, (await sub.receive()).text] == ["a", "b"]
    assert sub.dropped == 1


async def test_a_batch_past_the_bound_keeps_what_fits_and_counts_the_rest():
    sub = Subscription(max_events=3, max_bytes=1000)
    sub.offer_all([notice(f"n{i}") for i in range(5)])
    sub.offer_all([notice("later")])
    assert sub.dropped == 3
    assert sub.receive_nowait().text.startswith("this display fell behind: 3 ")
    assert [sub.receive_nowait().text for _ in range(3)] == ["n0", "n1", "n2"]
    sub.offer_all([notice("again")])
    assert sub.receive_nowait().text == "again"


async def test_bounded_in_bytes_but_one_large_event_alone_passes():
    sub = Subscription(max_events=100, max_bytes=1000)
    assert sub.offer(notice("huge"), 5000)  # nothing waiting: let in
    assert not sub.offer(notice("more"), 1)
    assert sub.receive_nowait().warning  # the drop is reported first
    assert sub.receive_nowait().text == "huge"
    assert sub.offer(notice("x"), 600) and not sub.offer(notice("y"), 600)
    assert sub.offer(notice("z"), 400)


async def test_close_ends_iteration():
    sub = Subscription()
    sub.offer(notice("last"), 4)
    sub.close()
    assert [e.text async for e in sub] == ["last"]


async def test_a_front_end_that_never_reads_does_not_stall_the_node(nursery):
    node = await start_node(nursery)
    box = await inbox(nursery, node)  # a front end that keeps up
    with node.subscribe(buffer=1000, max_bytes=64 * 1024) as stuck:  # one that never reads
        conn = await origin(node)
        with trio.fail_after(20):
            await send(conn, *(wire(f"{i} " + "x" * 4000) for i in range(100)))
            await box.wait_for(lambda bodies: len(bodies) == 100)
        assert stuck.dropped > 80  # at most ~64 KiB of 4 KB messages are held for it
        told = stuck.receive_nowait()  # first it learns what it missed, then the rest
        assert told.warning and f"{stuck.dropped} events were dropped" in told.text
        assert stuck.receive_nowait().message.body.startswith("0 ")


async def test_direct_takes_a_batch_only_while_its_consumer_waits_on_an_empty_inbox(nursery):
    sub = Subscription(max_events=10, max_bytes=1000)
    handled: list[list[str]] = []
    answer = [True]

    def direct(batch) -> bool:
        if answer[0] is None:
            raise RuntimeError("a bug in the front end")
        handled.append([e.text for e in batch])
        return answer[0]

    sub.direct = direct
    sub.offer_all([notice("queued")])  # nobody waits: queued, not handed over
    assert handled == [] and sub.receive_nowait().text == "queued"
    received: list[str] = []

    async def consumer() -> None:
        async for event in sub:
            received.append(event.text)

    nursery.start_soon(consumer)
    await trio.testing.wait_all_tasks_blocked()
    sub.offer_all([notice("a"), notice("b")])  # the consumer waits: handled here and now
    assert handled == [["a", "b"]]
    answer[0] = False  # declined: queued as usual
    sub.offer_all([notice("c")])
    sub.offer_all([notice("d")])  # "c" is still queued: not overtaken
    assert handled == [["a", "b"], ["c"]]
    answer[0] = None  # it raised: queued, the node goes on
    await trio.testing.wait_all_tasks_blocked()
    sub.offer_all([notice("e")])
    await trio.testing.wait_all_tasks_blocked()
    assert received == ["c", "d", "e"]
    sub.close()
