"""The bounded queue of encoded messages waiting for one outgoing link.  Pure state.

Rules:
- Bounded in bytes and in items.  ``put`` never blocks: when the message does not fit it is
  dropped *for this peer only*, counted, and ``put`` returns False (the caller logs it).
- ``take`` hands back everything queued, up to ``batch_bytes`` (at least one message), as one
  ``bytes`` so the link makes few ``send_all`` calls.
- A queue remembers since when it has been dropping (``overflowing_since``); the link uses it
  to disconnect a peer that stays full.
"""

from __future__ import annotations

from collections import deque

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
        self._items: deque[bytes] = deque()
        self._bytes = 0
        self.dropped = 0
        self.overflowing_since: float | None = None

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def put(self, data: bytes, now: float = 0.0) -> bool:
        if len(self._items) >= self.max_items or self._bytes + len(data) > self.max_bytes:
            self.dropped += 1
            if self.overflowing_since is None:
                self.overflowing_since = now
            return False
        self._items.append(data)
        self._bytes += len(data)
        return True

    def take(self) -> bytes:
        """Remove and return queued messages joined (b"" when empty)."""
        items = self._items
        if not items:
            return b""
        if self._bytes <= self.batch_bytes:
            batch = list(items)
            items.clear()
        else:
            batch = [items.popleft()]
            size = len(batch[0])
            while items and size + len(items[0]) <= self.batch_bytes:
                size += len(items[0])
                batch.append(items.popleft())
        data = b"".join(batch)
        self._bytes -= len(data)
        self.overflowing_since = None
        return data

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0
        self.overflowing_since = None
