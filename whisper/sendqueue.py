"""The bounded queues of encoded messages waiting for the outgoing links.  Pure state.

Rules (PROTOCOL.md §5.3):
- A ``SendQueue`` serves one link, bounded in bytes and in messages.  ``put`` never blocks:
  when the message does not fit it is dropped *for this peer only*, counted, and ``put``
  returns False.
- ``put_batch`` queues the messages of one received chunk as one item: the engine joins them
  once into one ``Shared`` that every link getting the same messages holds, so the common
  case costs one call per link per batch, not one per message.  When the batch does not fit
  whole, its messages are put one by one, and exactly those that do not fit are dropped.
- All the queues together are bounded by one ``SendBudget``, in bytes of memory: a message
  counts once however many queues hold it (the node encodes it once and puts the same
  ``Shared`` on every link).  When the total goes over the limit, the queues that hold the
  most lose their newest messages, all cut down to one level (``budget.cut_level``), until an
  eighth of the budget is free (so that this happens once per eighth of the budget sent, not
  at every message); a batch goes whole (at most one received chunk under the level).  The
  slowest peers lose messages; a peer that keeps up (a short queue) loses none, and a slow
  one never stalls the others.
- ``take`` hands back everything queued, up to ``batch_bytes`` (at least one message), as one
  ``bytes`` so the link makes few ``send_all`` calls.  What is taken no longer counts: it is
  the one batch the link is writing (at most ``batch_bytes`` or one message).
- A queue counts its overflow episodes (``overflows``: each run of drops that ends at the
  next ``take``), remembers since when the current one lasts (``overflowing_since``) and why
  (``overflow``); the link logs each episode once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

from .budget import cut_level

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_ITEMS = 20_000
DEFAULT_BATCH_BYTES = 256 * 1024
DEFAULT_BUDGET = 64 * 1024 * 1024

FULL = "its queue is full"
OVER_BUDGET = "all queues together are at the send budget, and its queue is among the longest"


class Shared:
    """Encoded messages (one, or a batch of ``count``), on every queue it was put on;
    counted once by the budget."""

    __slots__ = ("count", "data", "holders", "size")

    def __init__(self, data: bytes, count: int = 1) -> None:
        self.data = data
        self.size = len(data)
        self.count = count
        self.holders = 0  # queues holding it, when they share a budget


class SendBudget:
    """What all the queues sharing it hold together, each message counted once."""

    def __init__(self, limit: int = DEFAULT_BUDGET) -> None:
        if limit < 0:
            raise ValueError("a budget must be >= 0 bytes")
        self.limit = limit
        self.total = 0
        self._queues: set[SendQueue] = set()  # every queue not closed

    def _let_go(self, items: Iterable[Shared]) -> None:
        freed = 0
        for item in items:
            item.holders -= 1
            if not item.holders:
                freed += item.size
        self.total -= freed

    def _trim(self, now: float) -> None:
        """Cut the longest queues until an eighth of the budget is free."""
        target = self.limit - self.limit // 8
        while self.total > target:
            queues = [q for q in self._queues if q.nbytes]
            sizes = [q.nbytes for q in queues]
            counted = sum(sizes)
            if not counted:
                return
            # A message several queues hold frees its bytes only once all of them drop it:
            # scale what to cut by how much the queues share.
            free = -(-(self.total - target) * counted // self.total)
            level = cut_level(sizes, free)
            for queue in queues:
                if queue.nbytes > level:
                    queue._shed(level, now)


class SendQueue:
    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_items: int = DEFAULT_MAX_ITEMS,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        budget: SendBudget | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_items = max_items
        self.batch_bytes = batch_bytes
        self.budget = budget
        self._items: deque[Shared] = deque()
        self._bytes = 0
        self._count = 0  # messages in the items
        self.dropped = 0
        self.overflows = 0
        self.overflowing_since: float | None = None
        self.overflow = ""
        if budget is not None:
            budget._queues.add(self)

    def __len__(self) -> int:
        """Messages queued."""
        return self._count

    @property
    def nbytes(self) -> int:
        return self._bytes

    def put(self, data: bytes | Shared, now: float = 0.0) -> bool:
        """Queue a message (``Shared`` when other queues get the same); False if dropped."""
        item = data if isinstance(data, Shared) else Shared(data)
        size = item.size
        items = self._items
        if self._count + item.count > self.max_items or self._bytes + size > self.max_bytes:
            self.dropped += item.count
            self._episode(now, FULL)
            return False
        items.append(item)
        self._bytes += size
        self._count += item.count
        budget = self.budget
        if budget is None:
            return True
        if item.holders:
            item.holders += 1
            return True
        item.holders = 1
        budget.total += size
        if budget.total > budget.limit:
            budget._trim(now)
            return bool(items) and items[-1] is item  # else it was cut at once
        return True

    def put_batch(self, parts: Sequence[bytes], batch: Shared, now: float = 0.0) -> int:
        """Queue the messages ``parts``, joined in ``batch`` (which other queues may hold too);
        return how many were dropped."""
        if (
            self._count + batch.count <= self.max_items
            and self._bytes + batch.size <= self.max_bytes
        ):
            return 0 if self.put(batch, now) else batch.count
        return sum(not self.put(part, now) for part in parts)

    def take(self) -> bytes:
        """Remove and return queued messages joined (b"" when empty)."""
        items = self._items
        if not items:
            return b""
        if self._bytes <= self.batch_bytes:
            batch = list(items)
            items.clear()
            self._count = 0
        else:
            batch = [items.popleft()]
            size = batch[0].size
            while items and size + items[0].size <= self.batch_bytes:
                size += items[0].size
                batch.append(items.popleft())
            self._count -= sum(i.count for i in batch)
        data = batch[0].data if len(batch) == 1 else b"".join([i.data for i in batch])
        self._bytes -= len(data)
        self.overflowing_since = None
        if self.budget is not None:
            self.budget._let_go(batch)
        return data

    def clear(self) -> None:
        if self.budget is not None:
            self.budget._let_go(self._items)
        self._items.clear()
        self._bytes = 0
        self._count = 0
        self.overflowing_since = None

    def close(self) -> None:
        """Empty, and leave the budget: the link is gone."""
        self.clear()
        if self.budget is not None:
            self.budget._queues.discard(self)

    def _shed(self, level: int, now: float) -> None:
        """Drop the newest messages until at most ``level`` bytes are queued (the budget)."""
        items = self._items
        budget = self.budget
        assert budget is not None
        while items and self._bytes > level:
            item = items.pop()
            self._bytes -= item.size
            self._count -= item.count
            budget._let_go((item,))
            self.dropped += item.count
        self._episode(now, OVER_BUDGET)

    def _episode(self, now: float, why: str) -> None:
        if self.overflowing_since is None:
            self.overflowing_since = now
            self.overflow = why
            self.overflows += 1
