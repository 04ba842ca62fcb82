"""Whom the overlay router lets the engine dial because a message or a hello names them.

Rules (PROTOCOL.md §7.8; ``overlay_router.py`` installs it as ``Engine.may_dial``):
- A message's ``Addr`` and a hello's ``Addr`` are dialled as today (§5.1 step 8) only when
  the writer of the connection does not speak ``routing`` and the address is not known to
  speak it: membership decides the overlay's links.
- Known to speak it: the ``Addr`` of every hello that named ``routing``, and every link
  whose banner did (at most ``MAX_KNOWN``, least recent forgotten).
- On a connection that has not said hello yet, a message's ``Addr`` waits ``DIAL_DELAY``
  (an overlay peer's hello follows its banner at once; the Go peer says none), at most
  ``MAX_DEFERRED`` of them, then is dialled unless the hello came and named ``routing``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .incoming import Incoming
    from .relay import Engine

ROUTING = "routing"
DIAL_DELAY = 1.0
MAX_DEFERRED = 1024
MAX_KNOWN = 4096
INFINITY = float("inf")


class DialPolicy:
    def __init__(self, engine: Engine, remind: Callable[[float], None]) -> None:
        self.engine = engine
        self._remind = remind  # the router's: a deferred dial is a deadline
        self._known: OrderedDict[str, None] = OrderedDict()  # addresses that speak routing
        self._deferred: dict[str, tuple[Incoming, float]] = {}  # Addr -> (its conn, when)

    def may_dial(self, addr: str, conn: Incoming | None) -> bool:
        """Whether a message's (or a hello's) ``Addr`` is dialled as §5.1 step 8 says."""
        if conn is not None and ROUTING in conn.caps:
            if conn.addr is not None:
                self.know(conn.addr)
            return False
        if addr in self._known or addr in self.engine.table.outgoing:
            return False
        if conn is None or conn.addr is not None:  # discovery, or an old peer's hello
            return True
        if len(self._deferred) < MAX_DEFERRED:  # no hello yet: wait for one a little
            self._deferred.setdefault(addr, (conn, self.engine.now + DIAL_DELAY))
            self._remind(self.engine.now)
        return False

    def next_deadline(self) -> float:
        return min((at for _, at in self._deferred.values()), default=INFINITY)

    def dial_deferred(self, now: float) -> None:
        for addr, (conn, at) in list(self._deferred.items()):
            if at > now:
                continue
            del self._deferred[addr]
            if ROUTING not in conn.caps and addr not in self._known:
                self.engine.links.dial(addr, now, by_user=False, spoke=True)

    def know(self, addr: str) -> None:
        known = self._known
        known[addr] = None
        known.move_to_end(addr)
        while len(known) > MAX_KNOWN:
            known.popitem(last=False)
