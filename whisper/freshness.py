"""The timestamp acceptance window (PROTOCOL.md §4.2).

A message is only safe to accept if we would still recognise it as a duplicate for as long
as it may circulate.  Rules:

- No Timestamp (absent, or 0 as the Go peer relays it): accepted; it is deduplicated by ID
  for ``ttl`` from the moment we first see it.
- A Timestamp in seconds (the Go reference) or milliseconds (the spec) is normalised to
  milliseconds by ``Message.timestamp_ms``.
- Older than ``window(span, skew) = max(span - skew, span / 2)``, where ``span =
  min(ttl, seen.span())`` is how far back the seen cache is complete: too old, dropped (we
  may have forgotten it).  With a full memory (600 s) that is 540 s.  The ``span / 2`` floor
  matters only when a flood forced the cache to forget early: a duplicate can then slip
  through only if its sender's clock is more than ``span / 2`` ahead; without the floor the
  node would refuse every timestamped message until it had ``skew`` seconds of memory again.
- More than ``skew`` in the future: dropped (it would outlive our memory of it).
- A dropped message is ``Stale``; ``penalise`` says whether its sender is at fault: it is
  outside the *configured* window (``window(ttl, skew)``, or in the future).  One inside it,
  older only than what our seen cache still remembers, is dropped silently: our own load
  shrank the window, and an honest peer cannot know that (it could also be a replay we can
  no longer detect, so it is not accepted either).
"""

from __future__ import annotations

from dataclasses import dataclass

from .seen import DEFAULT_SKEW

#: A message whose Timestamp is older than this on arrival is history (twice the allowed skew).
HISTORY_AGE = 120.0


@dataclass(frozen=True, slots=True)
class Stale:
    """Why a message is outside the window, and whether that is its sender's fault."""

    reason: str
    penalise: bool

    def __str__(self) -> str:
        return self.reason


def window(memory: float, skew: float = DEFAULT_SKEW) -> float:
    """How old (seconds) a message may be, given ``memory`` seconds of complete seen cache."""
    return max(memory - skew, memory / 2)


def check_fresh(
    timestamp_ms: int | None,
    *,
    now: float,
    memory: float,
    skew: float = DEFAULT_SKEW,
    ttl: float | None = None,
) -> Stale | None:
    """Return None if acceptable, else why it is not.

    ``now`` is wall-clock seconds since the epoch; ``memory`` how many seconds back the seen
    cache is complete; ``ttl`` how far back it is configured to remember (default
    ``memory``: every drop is then the sender's fault).
    """
    if timestamp_ms is None:
        return None
    age = now - timestamp_ms / 1000.0
    if age < -skew:
        return Stale(f"timestamp {-age:.0f}s in the future (allowed skew {skew:.0f}s)", True)
    limit = window(memory, skew)
    if age > limit:
        configured = window(memory if ttl is None else max(ttl, memory), skew)
        if age > configured:
            return Stale(f"timestamp {age:.0f}s old (window {configured:.0f}s)", True)
        return Stale(
            f"timestamp {age:.0f}s old: our seen cache remembers only {memory:.0f}s"
            f" (window {limit:.0f}s, {configured:.0f}s when it is not full)",
            False,
        )
    return None


class Window:
    """The window at one moment, in milliseconds, for a batch of messages: inside ``low``
    .. ``high`` a message is fresh without a call; at the edges ``check`` decides (and says
    why).  ``history``: a message written before it is shown as history on arrival."""

    __slots__ = ("high", "history", "low", "memory", "skew", "ttl", "wall")

    def __init__(
        self, wall: float, memory: float, skew: float = DEFAULT_SKEW, ttl: float | None = None
    ) -> None:
        self.wall, self.memory, self.skew, self.ttl = wall, memory, skew, ttl
        self.low = (wall - window(memory, skew)) * 1000 + 1  # a millisecond inside: no rounding
        self.high = (wall + skew) * 1000 - 1
        self.history = (wall - HISTORY_AGE) * 1000

    def check(self, timestamp_ms: int) -> Stale | None:
        return check_fresh(
            timestamp_ms, now=self.wall, memory=self.memory, skew=self.skew, ttl=self.ttl
        )
