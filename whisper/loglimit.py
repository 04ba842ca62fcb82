"""Repeated log lines are rate-limited: a flood of bad input must not become a flood of stderr.

Rules:
- Records are grouped by the log call they come from (its file and line: one format string,
  whatever its arguments).  The groups are as many as the code has log calls.
- Each group may write ``burst`` lines at once, then ``rate`` a second (a ``TokenBucket``).
  A line over that is dropped and counted; the next line of the group that is written ends
  with `` (suppressed N similar lines)``.
- Pure: time comes from ``clock`` (``time.monotonic`` by default); the filter is installed on
  a handler (the command line's stderr, the terminal UI's log pane), so that it sees the
  records of every ``whisper`` logger.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .ratelimit import TokenBucket

BURST = 20
RATE = 1.0  # lines a second, per log call, after the burst


class RepeatLimit(logging.Filter):
    def __init__(
        self,
        *,
        burst: float = BURST,
        rate: float = RATE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst = burst
        self.rate = rate
        self._clock = clock
        self._buckets: dict[tuple[str, int], TokenBucket] = {}
        self._suppressed: dict[tuple[str, int], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.pathname, record.lineno)
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
        if not bucket.take(now):
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        suppressed = self._suppressed.get(key)
        if suppressed:
            try:
                text = record.getMessage()
            except (TypeError, ValueError, KeyError):  # a broken format: the handler says so
                return True
            del self._suppressed[key]
            record.msg, record.args = f"{text} (suppressed {suppressed} similar lines)", ()
        return True
