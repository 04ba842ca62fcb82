"""Token buckets: the one rate-limiting primitive of flood control.  Pure state.

Rules:
- A bucket holds at most ``burst`` tokens and gains ``rate`` tokens per second; it starts full.
  ``take`` spends one token if there is one and says whether there was.  A bucket never goes
  into debt, so a refused ``take`` costs nothing later.
- Time is passed in (``now``, seconds on any monotonic clock: ``trio.current_time()`` in the
  node, plain numbers in tests).  A clock that goes backwards adds no tokens.
- ``take`` is on the hot path of every relayed message: two attribute reads, a multiply, a
  compare and two stores; no allocation.
"""

from __future__ import annotations


class TokenBucket:
    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate < 0 or burst < 0:
            raise ValueError("rate and burst must not be negative")
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one; True if there was."""
        elapsed = now - self.stamp
        tokens = self.tokens
        if elapsed > 0:
            tokens += elapsed * self.rate
            if tokens > self.burst:
                tokens = self.burst
            self.stamp = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return True
        self.tokens = tokens
        return False

    def take_up_to(self, n: float, now: float) -> float:
        """Spend up to ``n`` tokens, as many as there are; returns how many were spent."""
        level = self.level(now)
        spent = min(n, level)
        self.tokens = level - spent
        self.stamp = max(self.stamp, now)
        return spent

    def level(self, now: float) -> float:
        """Tokens available at ``now`` (without spending any)."""
        elapsed = max(0.0, now - self.stamp)
        return min(self.burst, self.tokens + elapsed * self.rate)

    def full(self, now: float) -> bool:
        """True once the bucket has refilled: it is then the same as a new one."""
        return self.level(now) >= self.burst

    def wait(self, now: float) -> float:
        """Seconds until ``take`` would succeed (0 if it would now; inf if it never will)."""
        missing = 1.0 - self.level(now)
        if missing <= 0:
            return 0.0
        return missing / self.rate if self.rate > 0 else float("inf")

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate}, burst={self.burst}, tokens={self.tokens:.2f})"
