"""A discrete-event network of routers in one process: no sockets, no sleeps, a virtual clock.

For tests and ``bench/bench_overlay.py``.  Rules:
- Each peer is a router object (``Overlay``, or ``FloodPeer``: today's routing, PROTOCOL.md
  §5.1, for comparison) at an address ``10.a.b.c:55555``.  ``SimNet`` carries out their
  actions: a ``Send`` or a ``Push`` arrives after the latency between the two peers; a
  ``Connect``/``Disconnect`` adds or removes a link (one TCP connection, from the peer that
  connected) in the link table.
- Latency: every peer has a random place in a unit square; the one-way latency between two
  is 1 ms plus 49 ms times their distance over the diagonal (1-50 ms, obeying the triangle
  inequality).  It is fixed per pair, so each link delivers in order, as TCP does.
- A crashed peer's process is gone: each peer it had a link with (either way) is told
  ``link_down`` one latency later (the kernel resets the connections); what is sent to it
  is lost, and a ``Send`` to it comes back as ``link_down`` after a round trip (refused).
- Timers: after every event a peer handles, its ``next_deadline()`` is scheduled; the
  heap holds (time, sequence, event), so equal times run in the order they arose.  Given
  the seed, a run is deterministic.
- With ``check_wire`` every control goes through ``wire.encode``, ``json.loads`` and
  ``wire.decode`` on the way; every control's encoded size is counted either way.
- What the sim records about messages (who got each, when, after how many hops; copies
  that were duplicates) is kept outside the routers: the hop count is not on the wire.
"""

from __future__ import annotations

import heapq
import json
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from . import wire
from .actions import Action, Connect, Deliver, Disconnect, Push, Send
from .overlay import Overlay

INFINITY = float("inf")
_MSG, _CTL, _DOWN, _WAKE, _JOIN, _BCAST, _CRASH = range(7)
_DIAGONAL = math.sqrt(2.0)


class FloodPeer:
    """Today's routing: every new message to every outgoing link but its author's, and a
    dial to the author of each new message we have no link to (PROTOCOL.md §5.1, §5.2);
    at most ``max_outgoing`` links (None: no cap)."""

    def __init__(self, me: str, max_outgoing: int | None = None) -> None:
        self.me = me
        self.max_outgoing = max_outgoing
        self.links: dict[str, None] = {}
        self._seen: set[str] = set()

    def join(self, contacts: Iterable[str], now: float) -> list[Action]:
        return [self._dial(c) for c in contacts if c != self.me and c not in self.links]

    def broadcast(self, msg_id: str, author: object, now: float, size: int = 0) -> list[Action]:
        self._seen.add(msg_id)
        return [Push(tuple(self.links), msg_id, author)] if self.links else []

    def gossip(
        self,
        sender: str | None,
        msg_id: str,
        author: object,
        now: float,
        size: int = 0,
        root: str | None = None,
    ) -> list[Action]:
        if msg_id in self._seen:
            return []
        self._seen.add(msg_id)
        out: list[Action] = [Deliver(msg_id, author, sender)]
        targets = tuple(p for p in self.links if p != author)
        if targets:
            out.append(Push(targets, msg_id, author))
        full = self.max_outgoing is not None and len(self.links) >= self.max_outgoing
        if type(author) is str and author != self.me and author not in self.links and not full:
            out.append(self._dial(author))
        return out

    def _dial(self, peer: str) -> Connect:
        self.links[peer] = None
        return Connect(peer)

    def received(self, control: wire.Control, now: float) -> list[Action]:
        return []

    def link_down(self, peer: str, now: float) -> list[Action]:
        self.links.pop(peer, None)
        return []

    def tick(self, now: float) -> list[Action]:
        return []

    def next_deadline(self) -> float:
        return INFINITY


@dataclass
class Broadcast:
    """One message's fate: who got it, when, after how many hops."""

    origin: str
    sent: float
    audience: int  # peers alive when it was sent, the origin not counted
    got: dict[str, tuple[float, int]] = field(default_factory=dict)  # peer -> (time, hops)
    duplicates: int = 0


def address(index: int) -> str:
    return f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}:55555"


class SimNet:
    def __init__(
        self,
        seed: int,
        make: Callable[[str, random.Random], object] | None = None,
        *,
        check_wire: bool = False,
    ) -> None:
        """``make(addr, rng)`` builds a peer's router (default: an ``Overlay``)."""
        self.rng = random.Random(seed)
        self.make = make or (lambda addr, rng: Overlay(addr, rng))
        self.check_wire = check_wire
        self.now = 0.0
        self.peers: dict[str, object] = {}
        self.alive: dict[str, bool] = {}
        self.out: dict[str, set[str]] = {}  # links each peer opened
        self.into: dict[str, set[str]] = {}  # links opened to each peer
        self.messages: dict[str, Broadcast] = {}
        self.controls: dict[str, int] = {}  # kind -> count sent
        self.control_bytes = 0
        self.copies = 0  # whole messages written
        self._place: dict[str, tuple[float, float]] = {}
        self._wake: dict[str, float] = {}
        self._queue: list[tuple] = []
        self._seq = 0

    # -- building a network -------------------------------------------------------------

    def add(self, at: float, contacts: Sequence[str] = ()) -> str:
        """A new peer that starts at time ``at`` and joins through ``contacts``."""
        addr = address(len(self.peers) + 1)
        self.peers[addr] = self.make(addr, random.Random(self.rng.getrandbits(64)))
        self.alive[addr] = False
        self.out[addr], self.into[addr] = set(), set()
        self._place[addr] = (self.rng.random(), self.rng.random())
        self._wake[addr] = INFINITY
        self._push(at, _JOIN, addr, None, tuple(contacts))
        return addr

    def grow(self, count: int, every: float, start: float = 0.0) -> list[str]:
        """``count`` peers joining one every ``every`` seconds, each through a random one of
        those before it (the first alone)."""
        added: list[str] = []
        for i in range(count):
            contacts = (self.rng.choice(added),) if added else ()
            added.append(self.add(start + i * every, contacts))
        return added

    def link_all(self) -> None:
        """Every peer linked to every other (today's full mesh once all have spoken)."""
        everyone = list(self.peers)
        for addr, peer in self.peers.items():
            for other in everyone:
                if other != addr:
                    peer.links[other] = None  # type: ignore[attr-defined]
                    self.out[addr].add(other)
                    self.into[other].add(addr)

    def say(self, at: float, origin: str | None = None) -> str:
        """A message broadcast at ``at`` by ``origin`` (default: a random live peer then)."""
        msg_id = f"m{len(self.messages)}"
        self._push(at, _BCAST, origin, None, msg_id)
        self.messages[msg_id] = Broadcast("", at, 0)
        return msg_id

    def crash(self, at: float, fraction: float) -> None:
        """A random ``fraction`` of the live peers crash at ``at``, all at once."""
        self._push(at, _CRASH, None, None, fraction)

    def kill(self, at: float, peers: Sequence[str]) -> None:
        """These peers crash at ``at``."""
        self._push(at, _CRASH, None, None, tuple(peers))

    # -- running ------------------------------------------------------------------------

    def run(self, until: float) -> None:
        queue, pop = self._queue, heapq.heappop
        while queue and queue[0][0] <= until:
            now, _, kind, a, b, data = pop(queue)
            self.now = now
            if kind == _MSG:
                self._message(a, b, data)
            elif kind == _CTL:
                self._control(a, b, data)
            elif kind == _WAKE:
                if self.alive[a] and self._wake[a] == now:
                    self._wake[a] = INFINITY
                    self._apply(a, self.peers[a].tick(now))  # type: ignore[attr-defined]
            elif kind == _DOWN:
                if self.alive[a]:
                    self._apply(a, self.peers[a].link_down(b, now))  # type: ignore[attr-defined]
            elif kind == _JOIN:
                self.alive[a] = True
                self._apply(a, self.peers[a].join(data, now))  # type: ignore[attr-defined]
            elif kind == _BCAST:
                self._broadcast(a, data)
            else:
                self._crash(data)
        self.now = max(self.now, until)

    def latency(self, a: str, b: str) -> float:
        (ax, ay), (bx, by) = self._place[a], self._place[b]
        return 0.001 + 0.049 * math.hypot(ax - bx, ay - by) / _DIAGONAL

    def living(self) -> list[str]:
        return [a for a, up in self.alive.items() if up]

    def _push(self, at: float, kind: int, a: str | None, b: str | None, data: object) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, kind, a, b, data))

    def _message(self, sender: str, peer: str, msg_id: str) -> None:
        if not self.alive[peer]:
            return
        record = self.messages[msg_id]
        if peer in record.got or peer == record.origin:
            record.duplicates += 1
        else:
            record.got[peer] = (self.now, self._hops(record, sender) + 1)
        router = self.peers[peer]
        gossip = router.gossip  # type: ignore[attr-defined]
        self._apply(peer, gossip(sender, msg_id, record.origin, self.now, root=record.origin))

    @staticmethod
    def _hops(record: Broadcast, sender: str) -> int:
        return 0 if sender == record.origin else record.got[sender][1]

    def _control(self, sender: str, peer: str, control: wire.Control) -> None:
        if not self.alive[peer]:  # refused: the sender hears of it a round trip after sending
            self._push(self.now + self.latency(sender, peer), _DOWN, sender, peer, None)
            return
        if self.check_wire:
            decoded = wire.decode(json.loads(wire.encode(control)))
            assert decoded == control, (decoded, control)
        self._apply(peer, self.peers[peer].received(control, self.now))  # type: ignore[attr-defined]

    def _broadcast(self, origin: str | None, msg_id: str) -> None:
        living = self.living()
        if origin is None:
            origin = self.rng.choice(living)
        record = self.messages[msg_id]
        record.origin, record.audience = origin, len(living) - 1
        self._apply(origin, self.peers[origin].broadcast(msg_id, origin, self.now))  # type: ignore[attr-defined]

    def _crash(self, which: float | tuple[str, ...]) -> None:
        if type(which) is not tuple:
            living = self.living()
            which = tuple(self.rng.sample(living, round(which * len(living))))
        for addr in which:
            self.alive[addr] = False
            for other in self.out[addr] | self.into[addr]:
                self.out[other].discard(addr)
                self.into[other].discard(addr)
                self._push(self.now + self.latency(addr, other), _DOWN, other, addr, None)
            self.out[addr].clear()
            self.into[addr].clear()

    def _apply(self, addr: str, actions: list[Action]) -> None:
        now, push = self.now, self._push
        for action in actions:
            kind = type(action)
            if kind is Push:
                self.copies += len(action.peers)
                for peer in action.peers:
                    push(now + self.latency(addr, peer), _MSG, addr, peer, action.msg_id)
            elif kind is Send:
                control = action.control
                name = type(control).__name__
                self.controls[name] = self.controls.get(name, 0) + 1
                self.control_bytes += len(wire.encode(control))
                push(now + self.latency(addr, action.peer), _CTL, addr, action.peer, control)
            elif kind is Connect:
                if self.alive[action.peer]:
                    self.out[addr].add(action.peer)
                    self.into[action.peer].add(addr)
                else:  # the dial is refused
                    push(now + 2 * self.latency(addr, action.peer), _DOWN, addr, action.peer, None)
            elif kind is Disconnect:
                self.out[addr].discard(action.peer)
                self.into[action.peer].discard(addr)
        deadline = self.peers[addr].next_deadline()  # type: ignore[attr-defined]
        if deadline < self._wake[addr]:
            self._wake[addr] = deadline = max(deadline, now)
            push(deadline, _WAKE, addr, None, None)
