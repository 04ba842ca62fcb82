"""Hub benchmark: what the web's hub costs the node's event loop per message relayed.

One process, no sockets: real engine batches (``bench_engine.py``'s messages, relayed by an
``Engine`` in 64 KiB chunks, as an incoming connection delivers them; the engine's work is
done before timing) are published, as ``Node.publish_now`` does, at ``--rate`` msgs/s of a
trio ``MockClock`` (virtual time: the run is the same however loaded the machine is) to a
subscription drained at once (the headless front end) and, but for the first way, to a
``Hub`` (``whisper/web/hub.py``, its defaults) whose listeners take their frames on the
hub's tick as ``Feed._write`` does (without a websocket: the frame's text is made, not
sent).  Three ways, ``--runs`` (5) rounds interleaved, median printed: no hub; a hub and no
listener (``-http``, no browser); a hub and ``--listeners`` (10).  Printed: CPU of this
thread per message published (``time.thread_time``), and the difference from no hub.

The figure leaves out what ``bench_web.py`` measures on a real peer: hypercorn's writes,
and the cyclic collector walking a larger heap (``whisper/heap.py``).

Usage: ``.venv/bin/python bench/bench_hub.py [--messages 100000] [--rate 60000]``
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import trio
import trio.testing

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import ORIGIN, chunks, messages, relaying_engine

from whisper.engine import Deliver
from whisper.subscription import Subscription
from whisper.web.hub import Hub


def batches(n: int, links: int = 4) -> list[list[Any]]:
    """The events of each engine batch, as the node would publish them."""
    engine, dialled, conn = relaying_engine(links)
    out = []
    for i, chunk in enumerate(chunks(messages(n, ORIGIN))):
        events = []
        for action in engine.receive_data(conn, chunk, i * 0.001):
            if type(action) is Deliver:
                events += action.events
        for link in dialled:
            while engine.data_to_send(link):
                pass
        out.append(events)
    return out


class Bridge:
    """What the hub uses of ``web.bridge.Bridge``, over a list of subscriptions."""

    nick, addr, history_on = "bench", "127.0.0.1:1", False

    def __init__(self, subscribers: list[Subscription]) -> None:
        self.subscribers = subscribers

    @contextlib.contextmanager
    def subscribe(self, buffer: int, max_bytes: int) -> Iterator[Subscription]:
        subscription = Subscription(buffer, max_bytes)
        self.subscribers.append(subscription)
        yield subscription

    async def number_messages(self) -> None:
        return None

    def peers(self) -> list[dict[str, Any]]:
        return []

    def online(self) -> list[dict[str, Any]]:
        return []


async def listen(hub: Hub, frames: list[int]) -> None:
    """``Feed._write`` without the websocket."""
    listener = hub.attach(hub.ring.last_seq)
    while True:
        if listener.frame(hub.ring):
            frames[0] += 1
            await hub.tick()
        else:
            await listener.wait()


async def drain(events: Subscription) -> None:
    """A front end that keeps up: what waits is taken at once (as ``take_batch`` does)."""
    async for _ in events:
        with contextlib.suppress(trio.WouldBlock):
            while True:
                events.receive_nowait()


def run(data: list[list[Any]], rate: float, hub_on: bool, listeners: int) -> tuple[float, int]:
    """CPU seconds of this thread to publish ``data`` (and of what it woke), and frames."""
    frames = [0]
    result = [0.0]

    async def main() -> None:
        headless = Subscription()
        subscribers = [headless]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain, headless)
            if hub_on:
                hub = Hub(Bridge(subscribers))  # type: ignore[arg-type]
                await nursery.start(hub.run)
                for _ in range(listeners):
                    nursery.start_soon(listen, hub, frames)
            await trio.sleep(1)
            start = time.thread_time()
            for events in data:
                for subscription in subscribers:
                    subscription.offer_all(events)
                await trio.sleep(len(events) / rate)
            await trio.sleep(1)  # what the hub does once the blast is over
            result[0] = time.thread_time() - start
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return result[0], frames[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--rate", type=float, default=60_000, help="virtual msgs/s published")
    p.add_argument("--listeners", type=int, default=10)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    data = batches(args.messages)
    n = sum(len(b) for b in data)
    ways = {"no hub": (False, 0), "hub, no listener": (True, 0)}
    ways[f"hub, {args.listeners} listeners"] = (True, args.listeners)
    cpu: dict[str, list[float]] = {w: [] for w in ways}
    frames: dict[str, int] = {}
    for _ in range(args.runs):
        for way, (hub_on, listeners) in ways.items():
            seconds, frames[way] = run(data, args.rate, hub_on, listeners)
            cpu[way].append(seconds * 1e6 / n)
    print(
        f"{n:,} events in {len(data)} batches at {args.rate:,.0f}/s (virtual), median of "
        f"{args.runs}:"
    )
    base = statistics.median(cpu["no hub"])
    for way, values in cpu.items():
        us = statistics.median(values)
        print(f"  {way:18} {us:6.3f} us/msg ({us - base:+.3f}); frames {frames[way]}")


if __name__ == "__main__":
    main()
