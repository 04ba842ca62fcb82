"""The scalable router: HyParView's views carry Plumtree's tree, as one state machine.

Rules:
- One object per peer, fed what the shell (the engine, or ``sim.py``) sees: ``join``, a
  control received (``received``), a chat message received whole (``gossip``) or written
  by us (``broadcast``), a link lost (``link_down``), the time (``tick``).  Every method
  returns the actions to carry out, in order (a ``Send`` of ``Disconnect`` comes before the
  ``Disconnect`` that closes the link it is written on).
- Membership decides the neighbours: each ``Connect`` HyParView returns makes the peer a
  Plumtree neighbour (eager), each ``Disconnect`` or lost link removes it from the tree.
- Membership controls go to ``hyparview.py``, broadcast controls to ``plumtree.py``; an
  ``Invalid`` control is the shell's business (it never reaches here).
- Legacy peers (``legacy_up``: they do not speak the extension) are outside the overlay:
  they are pushed every message and sent no control.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from . import wire
from .actions import Action, Connect, Disconnect
from .hyparview import HyParView, HyParViewConfig
from .plumtree import Plumtree, PlumtreeConfig

#: Overlay links each way, at most: the active view (5) and room for the links that come
#: and go (joins, shuffles, a neighbour leaving): 16 TCP connections in all.  Legacy links
#: are not counted (``engine/overlay_slots.py``).
MAX_LINKS = 8


@dataclass(frozen=True)
class OverlayConfig:
    """``Config.routing`` (None: flood, PROTOCOL.md §5.1): the views' and the tree's
    settings, a seed for the random choices (None: random; simulations fix it) and the
    most overlay connections a peer keeps each way (``max_links`` dialled, as many
    accepted: ``engine/overlay_slots.py``)."""

    membership: HyParViewConfig | None = None
    broadcast: PlumtreeConfig | None = None
    seed: int | None = None
    max_links: int = MAX_LINKS


class Overlay:
    def __init__(
        self,
        me: str,
        rng: random.Random,
        membership: HyParViewConfig | None = None,
        broadcast: PlumtreeConfig | None = None,
    ) -> None:
        self.me = me
        self.membership = HyParView(me, rng, membership)
        self.tree = Plumtree(me, broadcast)

    def join(self, contacts: Iterable[str], now: float) -> list[Action]:
        return self._follow(self.membership.join(contacts, now))

    def contact(self, peer: str, now: float) -> list[Action]:
        """A peer that speaks the extension, linked other than by membership (``-peer``,
        ``/connect``, discovery): join through it if our active view is short."""
        return self._follow(self.membership.contact(peer, now))

    def received(self, control: wire.Control, now: float) -> list[Action]:
        if isinstance(control, wire.BROADCAST):
            return self.tree.received(control, now)
        return self._follow(self.membership.received(control, now))

    def gossip(
        self,
        sender: str | None,
        msg_id: str,
        payload: object,
        now: float,
        size: int = 0,
        root: str | None = None,
    ) -> list[Action]:
        return self.tree.gossip(sender, msg_id, payload, now, size, root)

    def follow(
        self, sender: str | None, msg_id: str, payload: object, now: float, size: int, root: str
    ) -> list[Action]:
        return self.tree.follow(sender, msg_id, payload, now, size, root)

    def broadcast(self, msg_id: str, payload: object, now: float, size: int = 0) -> list[Action]:
        return self.tree.broadcast(msg_id, payload, now, size)

    def link_down(self, peer: str, now: float) -> list[Action]:
        self.tree.neighbor_down(peer)
        return self._follow(self.membership.link_down(peer, now))

    def legacy_up(self, peer: str) -> None:
        self.tree.legacy_up(peer)

    def tick(self, now: float) -> list[Action]:
        return self.tree.tick(now) + self._follow(self.membership.tick(now))

    def shuffle_now(self, now: float) -> list[Action]:
        return self._follow(self.membership.shuffle_now(now))

    def next_deadline(self) -> float:
        return min(self.membership.next_deadline(), self.tree.next_deadline())

    def neighbors(self) -> list[str]:
        """The peers we keep links with: the active view and the legacy peers."""
        return [*self.membership.active, *self.tree.legacy]

    def _follow(self, actions: list[Action]) -> list[Action]:
        for action in actions:
            if type(action) is Connect:
                self.tree.neighbor_up(action.peer)
            elif type(action) is Disconnect:
                self.tree.neighbor_down(action.peer)
        return actions
