"""A front end's inbox of node events, bounded in events and in bytes.

Rules:
- The node never waits for a front end.  ``offer`` queues an event or drops it: dropped when
  ``max_events`` are waiting, or when the event would take the waiting bytes past
  ``max_bytes`` (one event alone is always let in, however large, so a front end that keeps
  up sees every message).  An event's size is ``events.weight``: a message's encoded
  length, a status event's text length.  ``offer_all`` offers a batch (one call per
  received chunk, not one per message).
- Its owner may change ``max_events`` as it goes (the web cuts it while it is behind).
- The front end learns what it missed: after a drop, its next ``receive`` returns a warning
  ``Notice`` saying how many events were dropped, before the events that follow.
- A front end may take events on the node's own turn (``direct``): a callable that gets
  the batch only while its consumer waits on an empty subscription (so nothing it has not
  shown yet is overtaken) and returns True if it handled all of it, without blocking;
  False (or an exception, left for the consumer's own task to meet) queues the batch as
  usual.  A message at chat rates is then shown without waking a second task for it.
- ``receive``, ``receive_nowait`` and ``async for`` behave as on a trio memory channel
  (``WouldBlock`` when empty, ``EndOfChannel`` once closed and empty; ``receive`` is a
  checkpoint); ``close`` (the node does it when the subscription ends) ends the iteration.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

import trio

from .events import Delivered, Event, Notice

DEFAULT_MAX_EVENTS = 1024
DEFAULT_MAX_BYTES = 16 * 1024 * 1024


class Subscription:
    def __init__(self, max_events: int = DEFAULT_MAX_EVENTS, max_bytes: int = DEFAULT_MAX_BYTES):
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._items: deque[tuple[Event, int]] = deque()
        self._bytes = 0
        self._unreported = 0
        self._closed = False
        self._lot = trio.lowlevel.ParkingLot()
        self.dropped = 0
        self.direct: Callable[[Sequence[Event]], bool] | None = None

    def offer(self, event: Event, size: int) -> bool:
        """Queue ``event`` of weight ``size`` (node side); False if it was dropped."""
        kept = self._put(event, size)
        if kept:
            self._lot.unpark_all()
        return kept

    def offer_all(self, events: Sequence[Event]) -> None:
        """Queue each of ``events`` that fits, weighed by ``events.weight`` (or hand them
        to ``direct``, see the rules)."""
        put, items, room = self._put, self._items, self.max_events
        if self.direct is not None and self._lot and not items and not self._unreported:
            try:
                if self.direct(events):
                    return
            except Exception:  # the consumer's own task meets it, not the node
                pass
        for done, event in enumerate(events):
            if len(items) >= room:  # full: the rest go at once, not one call each
                self._drop_many(len(events) - done)
                break
            put(event, event.size if type(event) is Delivered else len(event.text))  # type: ignore[union-attr]
        if items:
            self._lot.unpark_all()

    def _put(self, event: Event, size: int) -> bool:
        if self._closed or len(self._items) >= self.max_events:
            return self._drop()
        if self._bytes and self._bytes + size > self.max_bytes:
            return self._drop()
        self._items.append((event, size))
        self._bytes += size
        return True

    def close(self) -> None:
        self._closed = True
        self._lot.unpark_all()

    async def receive(self) -> Event:
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            event = self.receive_nowait()
        except trio.WouldBlock:
            pass
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return event
        while True:  # parking was the checkpoint: no second one once woken
            await self._lot.park()
            try:
                return self.receive_nowait()
            except trio.WouldBlock:
                continue

    def receive_nowait(self) -> Event:
        if self._unreported:
            count, self._unreported = self._unreported, 0
            return Notice(f"this display fell behind: {count} events were dropped", warning=True)
        if self._items:
            event, size = self._items.popleft()
            self._bytes -= size
            return event
        if self._closed:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def _drop(self) -> bool:
        self._drop_many(1)
        return False

    def _drop_many(self, count: int) -> None:
        self.dropped += count
        self._unreported += count
