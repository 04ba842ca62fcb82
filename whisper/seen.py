"""The seen-ID cache: which message IDs we have already handled, for a bounded time.

Rules (PROTOCOL.md §4):

- Every ID is remembered for at least ``ttl`` seconds of the injected monotonic clock
  (the node passes ``trio.current_time()``), and at most ``ttl + ttl / buckets``.
- Memory is bounded: at most ``max_entries`` IDs.  A bucket closes when its time is up *or*
  when it holds ``max_entries / buckets`` IDs, so past the cap only the oldest bucket (about
  a sixteenth) is forgotten early, never the whole cache, and ``span()`` shrinks to say how
  far back the cache still remembers everything; the freshness window (``freshness.py``)
  narrows with it.
- Entries are compact: the key is Python's keyed 64-bit SipHash of the ID string (randomised
  per process, so peers cannot aim collisions), the value a shared bucket number.  Measured:
  about 90 bytes per entry (``bench/bench_seen.py``).
- Expiry is done in whole buckets, lazily, on ``add``: no background task, no wall clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

DEFAULT_TTL = 600.0
DEFAULT_MAX_ENTRIES = 500_000
DEFAULT_BUCKETS = 16
DEFAULT_SKEW = 60.0


@dataclass(frozen=True)
class SeenConfig:
    """What we remember and for how long; with the clock skew we allow, that fixes which
    timestamps we accept (``freshness.py``).  ``Config.seen``."""

    ttl: float = DEFAULT_TTL
    max_entries: int = DEFAULT_MAX_ENTRIES
    skew: float = DEFAULT_SKEW


class SeenCache:
    def __init__(
        self,
        ttl: float = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        buckets: int = DEFAULT_BUCKETS,
    ) -> None:
        if ttl <= 0 or max_entries < 1 or buckets < 1:
            raise ValueError("ttl, max_entries and buckets must be positive")
        self.ttl = ttl
        self.max_entries = max_entries
        self._width = ttl / buckets
        self._per_bucket = max(1, max_entries // buckets)
        self._index: dict[int, int] = {}
        # (bucket number, time the bucket was opened, keys added while it was current)
        self._buckets: deque[tuple[int, float, list[int]]] = deque()
        self._next_bucket = 0
        self._forgot_until: float | None = None  # clock time up to which we forgot early

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, message_id: str) -> bool:
        return hash(message_id) in self._index

    def add(self, message_id: str, now: float) -> bool:
        """Remember an ID.  Returns False if it was already remembered."""
        key = hash(message_id)
        if key in self._index:
            return False
        buckets = self._buckets
        if (
            not buckets
            or now - buckets[-1][1] >= self._width
            or len(buckets[-1][2]) >= self._per_bucket
        ):
            self.expire(now)
            buckets.append((self._next_bucket, now, []))
            self._next_bucket += 1
        number, _, keys = buckets[-1]
        self._index[key] = number
        keys.append(key)
        if len(self._index) > self.max_entries:
            self._forget_oldest(now)
        return True

    def expire(self, now: float) -> None:
        """Drop the buckets whose every entry is older than ttl."""
        buckets = self._buckets
        # Bucket i holds entries added in [opened_i, opened_{i+1}); it may go once the
        # *next* bucket's opening time is ttl in the past.
        while len(buckets) >= 2 and now - buckets[1][1] >= self.ttl:
            self._drop(buckets.popleft())
        if len(buckets) == 1 and now - buckets[0][1] >= self.ttl + self._width:
            self._drop(buckets.popleft())

    def span(self, now: float) -> float:
        """How many seconds back the cache is complete (``ttl`` unless it forgot early)."""
        if self._forgot_until is None:
            return self.ttl
        return max(0.0, min(self.ttl, now - self._forgot_until))

    def _forget_oldest(self, now: float) -> None:
        buckets = self._buckets
        while len(self._index) > self.max_entries and len(buckets) > 1:
            self._drop(buckets.popleft())
            self._forgot_until = buckets[0][1]

    def _drop(self, bucket: tuple[int, float, list[int]]) -> None:
        number, _, keys = bucket
        index = self._index
        for key in keys:
            if index.get(key) == number:
                del index[key]
