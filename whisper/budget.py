"""Memory budgets shared by many holders: all receive buffers, all send queues.  Pure state.

Rules (PROTOCOL.md §5.3):
- A ``Budget`` has a ``limit`` in bytes.  Each holder (an incoming connection, for its
  unfinished message) says what it holds now (``hold``) and is ``release``d when it goes
  away; ``total`` is the sum, kept up to date in O(1).
- When the total is over the limit, the holder that holds the most (``biggest``) goes: the
  connection with one huge unfinished message, not the newcomer, and never the node.
- ``cut_level`` is water-filling, for the send queues (``sendqueue.py``): the level to cut
  the biggest of some sizes down to so that a given number of bytes goes, leaving every size
  at or under that level untouched.  The slowest peers lose messages, those that keep up
  (short queues) lose none.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

H = TypeVar("H", bound=Hashable)


class Budget(Generic[H]):
    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("a budget must be >= 0 bytes")
        self.limit = limit
        self.total = 0
        self._held: dict[H, int] = {}

    def __len__(self) -> int:
        return len(self._held)

    def held(self, holder: H) -> int:
        return self._held.get(holder, 0)

    def hold(self, holder: H, nbytes: int) -> None:
        """``holder`` holds ``nbytes`` now (0: nothing, as if released)."""
        held = self._held
        self.total += nbytes - held.get(holder, 0)
        if nbytes:
            held[holder] = nbytes
        else:
            held.pop(holder, None)

    def release(self, holder: H) -> None:
        self.hold(holder, 0)

    def over(self) -> bool:
        return self.total > self.limit

    def biggest(self) -> H | None:
        """The holder that holds the most (None when nobody holds anything)."""
        held = self._held
        return max(held, key=held.__getitem__) if held else None


def cut_level(sizes: Sequence[int], free: int) -> int:
    """The highest level such that cutting every size above it down to it frees ``free``
    bytes (0 when even that cannot: then everything goes)."""
    if free <= 0:
        return max(sizes, default=0)
    ordered = sorted(sizes, reverse=True)
    above = 0  # the sum of the k biggest
    for k, size in enumerate(ordered, 1):
        above += size
        following = ordered[k] if k < len(ordered) else 0
        if above - k * following >= free:  # cutting the k biggest to `following` is enough
            return (above - free) // k
    return 0
