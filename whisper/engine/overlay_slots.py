"""How many connections the overlay keeps each way (issue 14: at most 16 in all).  Pure.

Rules (PROTOCOL.md §7.8; ``overlay_router.py`` asks it):
- At most ``OverlayConfig.max_links`` (8) *overlay* links each way: outgoing links to peers
  that speak ``routing`` or that we dialled for membership, and incoming connections whose
  hello named ``routing``.  Legacy links (the Go peer, old whisper) are not counted: they
  are served as ever, under the peer table's own caps (``peers.py``).
- Membership's active view (5) fits with room to spare; the rest is for links that come
  and go (joins, shuffles, neighbours leaving).  A dial for membership into full slots
  closes the link that has lingered longest (``room``: no longer a neighbour, no answer
  awaited on it); if none may go, the dial is not made and the router reports the peer
  down, so that membership picks another.
- A hello naming ``routing`` into full slots (``refuse``) takes the slot of the oldest
  overlay connection from a peer that is neither an active neighbour nor one whose answer
  we await: that one carried its control (a shuffle, a forwarded join, a request we
  turned down) and is closed.  Only when every one is a neighbour's is the newcomer
  refused (closed, saying why), unless it is a neighbour's too.  Refusing the newest
  instead starves joins: in the 60-peer simulation joiners refused by their contacts
  made a clique of four with no room in anyone's active view, cut off for good.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING

from .overlay_dialling import ROUTING

if TYPE_CHECKING:
    from ..peers import Peer
    from .incoming import Incoming


class OverlaySlots:
    def __init__(
        self,
        max_links: int,
        outgoing: dict[str, Peer],
        dialled: Collection[str],
        keep: Callable[[], Collection[str]],
        close: Callable[[Incoming, str], None],
    ) -> None:
        self.max_links = max_links
        self._outgoing = outgoing  # the engine's table: every outgoing link
        self._dialled = dialled  # the router's: links it opened for membership
        self._keep = keep  # the peers whose links stay: active neighbours, answers awaited
        self._close = close  # the engine's: drops an incoming connection, saying why
        self._speakers: list[Incoming] = []  # incoming overlay connections, oldest first
        self.refused = 0  # hellos refused and dials not made, for want of a slot
        self.given_way = 0  # connections and links closed to make room

    def room(self, linger: Iterable[str]) -> tuple[bool, str | None]:
        """Whether a dial for membership may be made, and the link to close first for it
        (the first of ``linger`` that may go)."""
        dialled = self._dialled
        links = sum(1 for a, p in self._outgoing.items() if a in dialled or ROUTING in p.caps)
        if links < self.max_links:
            return True, None
        keep = self._keep()
        for peer in linger:
            if peer not in keep and peer in self._outgoing:
                self.given_way += 1
                return True, peer
        self.refused += 1
        return False, None

    def refuse(self, conn: Incoming) -> str | None:
        """A hello named ``conn``: why to close it, if it is one overlay connection too many
        and none gives way (then the oldest that may go is closed, and ``conn`` let in)."""
        if ROUTING not in conn.caps:
            return None
        speakers = self._speakers = [c for c in self._speakers if c.closed is None]
        if len(speakers) >= self.max_links:
            keep = self._keep()
            victim = next((c for c in speakers if c.addr not in keep), None)
            if victim is not None:
                speakers.remove(victim)
                self.given_way += 1
                self._close(victim, f"its slot went to a newer overlay connection ({conn.addr})")
            elif conn.addr not in keep:
                self.refused += 1
                return f"{self.max_links} overlay connections already, all neighbours"
        speakers.append(conn)
        return None
