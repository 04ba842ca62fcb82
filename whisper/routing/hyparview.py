"""HyParView membership (Leitao, Pereira, Rodrigues, DSN 2007), as a pure state machine.

Fed events (``join``, ``received``, ``link_down``, ``tick``) with the time, it returns
actions (``actions.py``).  No sockets, no clock, no global random: ``rng`` is injected.

Rules (PROTOCOL.md §7.8 is normative):

- Two views of peer addresses, disjoint, never holding ``me``: the *active* view (at most
  ``active_size``, 5: the peers we exchange messages with, each a link both ways) and the
  *passive* view (at most ``passive_size``, 30: addresses kept to repair the active view).
  The active view is symmetric: whoever adds a peer tells it (``Accept``), and whoever drops
  one tells it (``Disconnect``), so the peer drops it too and keeps it as passive.
- Join: a newcomer sends ``Join`` to one contact.  The contact takes it as a neighbour even
  if it must drop a random one, answers ``Accept``, and sends ``ForwardJoin(ttl=ARWL)`` to
  each of its other neighbours.  A ``ForwardJoin`` is a random walk: at ``ttl == PRWL`` the
  walker keeps the newcomer as passive; at ``ttl == 0``, or at a peer with one neighbour, the
  walk ends and that peer asks the newcomer with a high-priority ``Neighbor``; else it
  forwards it with ``ttl - 1`` to a random neighbour other than the one it came from.
- Neighbour requests: a high-priority one is always accepted (dropping a random neighbour if
  the view is full); a low-priority one only into a free slot, else ``Reject``.  A request
  is high priority when the asker has no neighbour at all.  A request that is not answered
  within ``neighbor_timeout`` counts as a dead peer, dropped from the passive view.
- Repair: when a neighbour's link goes down, or it sends ``Disconnect``, we ask passive
  peers, at random, until the active view is full again; a peer that refused is not asked
  again for ``refused_for`` seconds, and a peer whose link failed is forgotten.  A view that
  stays short is topped up by one request every ``refill_interval``.  With both views empty
  we join again through a contact, every ``rejoin_interval``.
- Shuffle: every ``shuffle_interval`` (+-20%, or at once on ``shuffle_now``), we send
  ourselves, ``shuffle_active`` neighbours and ``shuffle_passive`` passive peers on a random
  walk of ``shuffle_ttl`` hops.  Where the walk ends (``ttl`` spent, or a peer with one
  neighbour), the peer answers the origin directly with as many of its own addresses and
  keeps what it was sent; both sides make room by evicting, first, what they sent.
- Everything is bounded: both views, the pending requests (``2 * active_size``), and the
  memory of refusals (dropped once ``refused_for`` has passed).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from . import wire
from .actions import Action, Connect, Disconnect, Send

INFINITY = float("inf")
MAX_CONTACTS = 16


@dataclass(frozen=True, slots=True)
class HyParViewConfig:
    active_size: int = 5  # log10(N) + 1 for N = 10,000 (the paper's setting)
    passive_size: int = 30  # 6 * active_size
    arwl: int = 6  # active random walk length
    prwl: int = 3  # passive random walk length
    shuffle_ttl: int = 6
    shuffle_active: int = 3  # ka
    shuffle_passive: int = 4  # kp
    shuffle_interval: float = 30.0
    neighbor_timeout: float = 3.0
    refused_for: float = 30.0
    refill_interval: float = 10.0
    rejoin_interval: float = 5.0


class HyParView:
    def __init__(self, me: str, rng: random.Random, config: HyParViewConfig | None = None) -> None:
        self.me = me
        self.rng = rng
        self.config = config or HyParViewConfig()
        self.active: dict[str, None] = {}  # insertion-ordered sets
        self.passive: dict[str, None] = {}
        self.contacts: tuple[str, ...] = ()
        self._pending: dict[str, float] = {}  # peer asked (Join or Neighbor) -> deadline
        self._refused: dict[str, float] = {}  # peer -> when it refused us
        self._last_shuffle: tuple[str, ...] = ()
        self._next_shuffle = INFINITY
        self._next_refill = INFINITY
        self._repairing = False

    # -- events -------------------------------------------------------------------------

    def join(self, contacts: Iterable[str], now: float) -> list[Action]:
        """Start: join the overlay through one of ``contacts`` (kept for rejoining)."""
        self.contacts = tuple(c for c in dict.fromkeys(contacts) if c != self.me)
        self._next_shuffle = now + self._interval()
        out: list[Action] = []
        self._rejoin(now, out)
        self._schedule_refill(now)
        return out

    def contact(self, peer: str, now: float) -> list[Action]:
        """A new contact: kept for rejoining; joined through at once while the active view
        is short (else it is one more passive peer)."""
        out: list[Action] = []
        if peer == self.me or peer in self.active:
            return out
        if peer not in self.contacts:
            self.contacts = (*self.contacts, peer)[-MAX_CONTACTS:]
        if len(self.active) >= self.config.active_size or peer in self._pending:
            self._add_passive(peer)
            return out
        self.passive.pop(peer, None)
        self._pending[peer] = now + self.config.neighbor_timeout
        out.append(Send(peer, wire.Join(self.me)))
        return out

    def received(self, control: wire.Control, now: float) -> list[Action]:
        out: list[Action] = []
        sender = control.sender
        if sender == self.me:
            return out
        match control:
            case wire.Join():
                self._on_join(sender, now, out)
            case wire.ForwardJoin(peer=peer, ttl=ttl):
                self._on_forward_join(sender, peer, ttl, now, out)
            case wire.Neighbor(high=high):
                self._on_neighbor(sender, high, out)
            case wire.Accept():
                self._on_accept(sender, out)
            case wire.Reject():
                self._pending.pop(sender, None)
                self._refused[sender] = now
                if sender not in self.active and self._repairing:
                    self._refill(now, out)
            case wire.Disconnect():
                self._pending.pop(sender, None)
                if sender in self.active:
                    self._remove_active(sender, out)
                    self._add_passive(sender)
                    self._repair(now, out)
            case wire.Shuffle(origin=origin, ttl=ttl, peers=peers):
                self._on_shuffle(sender, origin, ttl, peers, out)
            case wire.ShuffleReply(peers=peers):
                self._integrate(peers, self._last_shuffle)
                self._refill(now, out)
        self._schedule_refill(now)
        return out

    def link_down(self, peer: str, now: float) -> list[Action]:
        """Our connection with ``peer`` failed, or could not be made: take it for dead."""
        out: list[Action] = []
        self._pending.pop(peer, None)
        self.passive.pop(peer, None)
        if peer in self.active:
            self._remove_active(peer, out)
            self._repair(now, out)
        elif self._repairing:
            self._refill(now, out)
        self._schedule_refill(now)
        return out

    def tick(self, now: float) -> list[Action]:
        out: list[Action] = []
        expired = [p for p, deadline in self._pending.items() if deadline <= now]
        for peer in expired:  # no answer: as good as dead
            del self._pending[peer]
            self.passive.pop(peer, None)
        if expired:
            self._refill(now, out)
        forgiven = now - self.config.refused_for
        for peer in [p for p, when in self._refused.items() if when <= forgiven]:
            del self._refused[peer]
        if now >= self._next_shuffle:
            self._shuffle(out)
            self._next_shuffle = now + self._interval()
        if now >= self._next_refill:
            self._next_refill = INFINITY
            if not self.active and not self.passive:
                self._rejoin(now, out)
            else:
                self._refill(now, out, once=True)
        self._schedule_refill(now)
        return out

    def shuffle_now(self, now: float) -> list[Action]:
        """A shuffle at once (``/discover``); the next periodic one a full interval later."""
        out: list[Action] = []
        self._shuffle(out)
        self._next_shuffle = now + self._interval()
        return out

    def asked(self) -> list[str]:
        """The peers whose answer to our join or neighbour request we await."""
        return list(self._pending)

    def next_deadline(self) -> float:
        """When ``tick`` next has something to do."""
        return min(self._next_shuffle, self._next_refill, *self._pending.values())

    # -- the rules ----------------------------------------------------------------------

    def _on_join(self, sender: str, now: float, out: list[Action]) -> None:
        self._pending.pop(sender, None)
        self._add_active(sender, out)
        out.append(Send(sender, wire.Accept(self.me)))
        for peer in self.active:
            if peer != sender:
                out.append(Send(peer, wire.ForwardJoin(self.me, sender, self.config.arwl)))

    def _on_forward_join(
        self, sender: str, peer: str, ttl: int, now: float, out: list[Action]
    ) -> None:
        if peer == self.me or peer in self.active or peer in self._pending:
            return
        if ttl == 0 or len(self.active) <= 1:
            self._ask(peer, high=True, now=now, out=out)
            return
        if ttl == self.config.prwl:
            self._add_passive(peer)
        choices = [p for p in self.active if p != sender and p != peer]
        if choices:
            nxt = self.rng.choice(choices)
            out.append(Send(nxt, wire.ForwardJoin(self.me, peer, ttl - 1)))

    def _on_neighbor(self, sender: str, high: bool, out: list[Action]) -> None:
        if sender in self.active or high or len(self.active) < self.config.active_size:
            self._add_active(sender, out)
            out.append(Send(sender, wire.Accept(self.me)))
        else:
            self._add_passive(sender)
            out.append(Send(sender, wire.Reject(self.me)))

    def _on_accept(self, sender: str, out: list[Action]) -> None:
        asked = self._pending.pop(sender, None) is not None
        if sender in self.active:
            return
        if asked or len(self.active) < self.config.active_size:
            self._add_active(sender, out)
        else:  # an answer we no longer wait for, and no room: keep the views symmetric
            out.append(Send(sender, wire.Disconnect(self.me)))
            self._add_passive(sender)
        if len(self.active) >= self.config.active_size:
            self._repairing = False

    def _on_shuffle(
        self, sender: str, origin: str, ttl: int, peers: tuple[str, ...], out: list[Action]
    ) -> None:
        if origin == self.me:
            return
        ttl -= 1
        choices = [p for p in self.active if p != sender and p != origin]
        if ttl > 0 and len(self.active) > 1 and choices:
            nxt = self.rng.choice(choices)
            out.append(Send(nxt, wire.Shuffle(self.me, origin, ttl, peers)))
            return
        reply = self._sample(self.passive, len(peers), {origin})
        if len(reply) < len(peers):
            reply += self._sample(self.active, len(peers) - len(reply), {origin})
        out.append(Send(origin, wire.ShuffleReply(self.me, tuple(reply))))
        self._integrate(peers, reply)

    def _shuffle(self, out: list[Action]) -> None:
        if not self.active:
            return
        target = self.rng.choice(list(self.active))
        c = self.config
        sample = [self.me]
        sample += self._sample(self.active, c.shuffle_active, {target})
        sample += self._sample(self.passive, c.shuffle_passive, {target})
        self._last_shuffle = tuple(sample)
        out.append(Send(target, wire.Shuffle(self.me, self.me, c.shuffle_ttl, tuple(sample))))

    # -- views --------------------------------------------------------------------------

    def _add_active(self, peer: str, out: list[Action]) -> None:
        if peer == self.me or peer in self.active:
            return
        if len(self.active) >= self.config.active_size:
            victim = self.rng.choice(list(self.active))
            out.append(Send(victim, wire.Disconnect(self.me)))
            self._remove_active(victim, out)
            self._add_passive(victim)
        self.passive.pop(peer, None)
        self.active[peer] = None
        out.append(Connect(peer))

    def _remove_active(self, peer: str, out: list[Action]) -> None:
        del self.active[peer]
        out.append(Disconnect(peer))

    def _add_passive(self, peer: str, evict_first: Iterable[str] = ()) -> None:
        if peer == self.me or peer in self.active or peer in self.passive:
            return
        if len(self.passive) >= self.config.passive_size:
            victim = next((p for p in evict_first if p in self.passive), None)
            if victim is None:
                victim = self.rng.choice(list(self.passive))
            del self.passive[victim]
        self.passive[peer] = None

    def _integrate(self, peers: Iterable[str], sent: Iterable[str]) -> None:
        sent = [p for p in sent if p != self.me]
        for peer in peers:
            self._add_passive(peer, sent)

    def _sample(self, view: dict[str, None], k: int, exclude: set[str]) -> list[str]:
        choices = [p for p in view if p not in exclude]
        return self.rng.sample(choices, min(k, len(choices)))

    # -- repair -------------------------------------------------------------------------

    def _repair(self, now: float, out: list[Action]) -> None:
        self._repairing = True
        self._refill(now, out)

    def _refill(self, now: float, out: list[Action], once: bool = False) -> None:
        """Ask passive peers until the requests out would fill the active view."""
        c = self.config
        while len(self.active) + len(self._pending) < c.active_size:
            if len(self._pending) >= 2 * c.active_size:
                return
            refused, pending, forgiven = self._refused, self._pending, now - c.refused_for
            choices = [
                p
                for p in self.passive
                if p not in pending and refused.get(p, -INFINITY) <= forgiven
            ]
            if not choices:
                self._repairing = False
                return
            peer = self.rng.choice(choices)
            self._ask(peer, high=not self.active and not pending, now=now, out=out)
            if once:
                return
        if len(self.active) >= c.active_size:
            self._repairing = False

    def _ask(self, peer: str, *, high: bool, now: float, out: list[Action]) -> None:
        if len(self._pending) >= 2 * self.config.active_size:
            self._add_passive(peer)
            return
        self._pending[peer] = now + self.config.neighbor_timeout
        out.append(Send(peer, wire.Neighbor(self.me, high)))

    def _rejoin(self, now: float, out: list[Action]) -> None:
        if self.contacts and not self._pending:
            contact = self.rng.choice(self.contacts)
            self._pending[contact] = now + self.config.neighbor_timeout
            out.append(Send(contact, wire.Join(self.me)))

    def _schedule_refill(self, now: float) -> None:
        c = self.config
        if len(self.active) >= c.active_size:
            self._next_refill = INFINITY
        elif self._next_refill == INFINITY:
            empty = not self.active and not self.passive
            self._next_refill = now + (c.rejoin_interval if empty else c.refill_interval)

    def _interval(self) -> float:
        return self.config.shuffle_interval * self.rng.uniform(0.8, 1.2)
