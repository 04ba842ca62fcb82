"""The bounded queue of encoded messages waiting for one outgoing link.  Pure state.

Rules:
- Bounded in bytes and in messages.  ``put`` never blocks: when the message does not fit it
  is dropped *for this peer only*, counted, and ``put`` returns False (the caller logs it).
- ``put_batch`` queues the messages of one received chunk, joined once by the engine and
  shared by every link, as one item: the common case costs one call per link per batch,
  not one per message.  When the whole batch does not fit, its messages are put one by one,
  so exactly those that do not fit are dropped, as if they had come one at a time.
- ``take`` hands back everything queued, up to ``batch_bytes`` (at least one item), as one
  ``bytes`` so the link makes few ``send_all`` calls.
- A queue remembers since when it has been dropping (``overflowing_since``); the link uses it
  to disconnect a peer that stays full.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_ITEMS = 20_000
DEFAULT_BATCH_BYTES = 256 * 1024


class SendQueue:
    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_items: int = DEFAULT_MAX_ITEMS,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_items = max_items
        self.batch_bytes = batch_bytes
        self._items: deque[tuple[bytes, int]] = deque()  # (data, messages in it)
        self._bytes = 0
        self._count = 0
        self.dropped = 0
        self.overflowing_since: float | None = None

    def __len__(self) -> int:
        """Messages queued."""
        return self._count

    @property
    def nbytes(self) -> int:
        return self._bytes

    def put(self, data: bytes, now: float = 0.0) -> bool:
        if self._count >= self.max_items or self._bytes + len(data) > self.max_bytes:
            self.dropped += 1
            if self.overflowing_since is None:
                self.overflowing_since = now
            return False
        self._items.append((data, 1))
        self._bytes += len(data)
        self._count += 1
        return True

    def put_batch(self, parts: Sequence[bytes], joined: bytes, now: float = 0.0) -> int:
        """Queue ``parts`` (``joined`` is their concatenation); return how many were dropped."""
        count = len(parts)
        if self._count + count <= self.max_items and self._bytes + len(joined) <= self.max_bytes:
            self._items.append((joined, count))
            self._bytes += len(joined)
            self._count += count
            return 0
        return sum(not self.put(part, now) for part in parts)

    def take(self) -> bytes:
        """Remove and return queued messages joined (b"" when empty)."""
        items = self._items
        if not items:
            return b""
        if self._bytes <= self.batch_bytes:
            batch = [data for data, _ in items]
            items.clear()
            self._count = 0
        else:
            data, count = items.popleft()
            batch, size, taken = [data], len(data), count
            while items and size + len(items[0][0]) <= self.batch_bytes:
                data, count = items.popleft()
                batch.append(data)
                size += len(data)
                taken += count
            self._count -= taken
        data = batch[0] if len(batch) == 1 else b"".join(batch)
        self._bytes -= len(data)
        self.overflowing_since = None
        return data

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0
        self._count = 0
        self.overflowing_since = None
