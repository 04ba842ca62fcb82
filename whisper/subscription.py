"""A front end's inbox of node events, bounded in events and in bytes.

Rules:
- The node never waits for a front end.  ``offer`` queues an event or drops it: dropped when
  ``max_events`` are waiting, or when the event would take the waiting bytes past
  ``max_bytes`` (one event alone is always let in, however large, so a front end that keeps
  up sees every message).  An event's size is what the node says it is: a message's encoded
  length, a notice's text length.
- The front end learns what it missed: after a drop, its next ``receive`` returns a warning
  ``Notice`` saying how many events were dropped, before the events that follow.
- ``receive``, ``receive_nowait`` and ``async for`` behave as on a trio memory channel;
  ``close`` (the node does it when the subscription ends) ends the iteration.
"""

from __future__ import annotations

import trio

from .events import Event, Notice

DEFAULT_MAX_EVENTS = 1024
DEFAULT_MAX_BYTES = 16 * 1024 * 1024


class Subscription:
    def __init__(self, max_events: int = DEFAULT_MAX_EVENTS, max_bytes: int = DEFAULT_MAX_BYTES):
        self.max_bytes = max_bytes
        self._send, self._receive = trio.open_memory_channel[tuple[Event, int]](max_events)
        self._bytes = 0
        self._unreported = 0
        self.dropped = 0

    def offer(self, event: Event, size: int) -> bool:
        """Queue ``event`` (node side); False if it was dropped."""
        if self._bytes and self._bytes + size > self.max_bytes:
            return self._drop()
        try:
            self._send.send_nowait((event, size))
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            return self._drop()
        self._bytes += size
        return True

    def close(self) -> None:
        self._send.close()

    async def receive(self) -> Event:
        if self._unreported:
            return self._report()
        return self._taken(await self._receive.receive())

    def receive_nowait(self) -> Event:
        if self._unreported:
            return self._report()
        return self._taken(self._receive.receive_nowait())

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def _taken(self, item: tuple[Event, int]) -> Event:
        event, size = item
        self._bytes -= size
        return event

    def _drop(self) -> bool:
        self.dropped += 1
        self._unreported += 1
        return False

    def _report(self) -> Notice:
        count, self._unreported = self._unreported, 0
        return Notice(f"this display fell behind: {count} events were dropped", warning=True)
