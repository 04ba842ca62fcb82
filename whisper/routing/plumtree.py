"""Plumtree broadcast (Leitao, Pereira, Rodrigues, SRDS 2007), as a pure state machine.

Fed the membership's neighbours (``neighbor_up``/``neighbor_down``), the messages (our own:
``broadcast``; received whole: ``gossip``), the controls (``received``) and the time
(``tick``), it returns actions (``actions.py``).  No sockets, no clock.

Rules (PROTOCOL.md §7.9 is normative):

- Every neighbour is *eager* (sent whole messages) or *lazy* (sent their IDs in ``IHave``).
  A new neighbour starts eager; the eager links form a spanning tree once duplicates have
  pruned the rest.  *Legacy* peers (they do not speak the extension: the Go reference peer,
  older whisper) are always eager and are never sent a control.
- A new message, ours or received, is delivered once (``Deliver``), pushed whole to every
  eager and legacy peer but the one it came from, and its ID queued for every lazy one.  The
  peer it came from becomes eager (it is our parent in the tree now).
- A duplicate from a neighbour makes that neighbour lazy, and we tell it ``Prune``.
  A ``Prune`` makes its sender lazy.
- ``IHave`` IDs we have not received are *missing*: each remembers who announced it.
  ``graft_timeout`` after the first announcement, if the message has still not come, we send
  ``Graft`` to the first announcer (it becomes eager: the tree is repaired through it) and
  try the next one ``graft_retry`` later.  A ``Graft`` makes its sender eager, and we push
  it each message it names that we still hold.
- Lazy IDs wait ``lazy_delay`` and go out in one ``IHave`` per peer, at most
  ``wire.MAX_IDS`` each; a queue that reaches that many goes out at once.  A message whose ID
  is longer than ``wire.MAX_ID_LENGTH`` cannot be announced: it is pushed to lazy peers too.
- A lost neighbour's queue, announcements and place in the tree are forgotten.
- Bounded: received IDs (``seen_ttl``, ``seen_entries``), messages kept for grafts
  (``cache_ttl``, ``cache_entries``, ``cache_bytes``), missing IDs (``missing_entries``,
  at most ``announcers`` each).  Expiry is lazy, oldest first, on new messages.
- The paper's optional tree optimisation (swap an eager link for a lazy one that announces
  with fewer hops) is not done: whispernet messages carry no hop count.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass

from . import wire
from .actions import Action, Deliver, Push, Send

INFINITY = float("inf")


@dataclass(frozen=True, slots=True)
class PlumtreeConfig:
    lazy_delay: float = 0.1
    graft_timeout: float = 0.5
    graft_retry: float = 0.25
    cache_ttl: float = 60.0
    cache_entries: int = 4096
    cache_bytes: int = 16 << 20
    seen_ttl: float = 600.0
    seen_entries: int = 100_000
    missing_entries: int = 4096
    announcers: int = 8


class Plumtree:
    def __init__(self, me: str, config: PlumtreeConfig | None = None) -> None:
        self.me = me
        self.config = config or PlumtreeConfig()
        self.eager: dict[str, None] = {}
        self.lazy: dict[str, None] = {}
        self.legacy: dict[str, None] = {}
        self._queues: dict[str, tuple[float, list[str]]] = {}  # peer -> (flush at, IDs)
        self._missing: dict[str, deque[str]] = {}  # ID -> who announced it, first first
        self._timers: list[tuple[float, str]] = []  # (deadline, ID); stale entries skipped
        self._due: dict[str, float] = {}  # ID -> its live timer's deadline
        self._seen: OrderedDict[str, float] = OrderedDict()  # ID -> when received
        self._cache: OrderedDict[str, tuple[float, object, int]] = OrderedDict()
        self._cached_bytes = 0

    # -- membership ---------------------------------------------------------------------

    def neighbor_up(self, peer: str) -> None:
        if peer not in self.lazy and peer != self.me:
            self.eager[peer] = None

    def legacy_up(self, peer: str) -> None:
        self.legacy[peer] = None

    def neighbor_down(self, peer: str) -> None:
        self.eager.pop(peer, None)
        self.lazy.pop(peer, None)
        self.legacy.pop(peer, None)
        self._queues.pop(peer, None)
        for announcers in self._missing.values():
            if peer in announcers:
                announcers.remove(peer)

    # -- messages -----------------------------------------------------------------------

    def broadcast(self, msg_id: str, payload: object, now: float, size: int = 0) -> list[Action]:
        """Our own new message."""
        out: list[Action] = []
        if msg_id in self._seen:
            return out
        self._take(msg_id, payload, size, now)
        self._spread(msg_id, payload, None, now, out)
        return out

    def gossip(
        self, sender: str | None, msg_id: str, payload: object, now: float, size: int = 0
    ) -> list[Action]:
        """A whole message from ``sender`` (None: a connection we cannot name)."""
        out: list[Action] = []
        if msg_id in self._seen:
            if sender is not None and (sender in self.eager or sender in self.lazy):
                self.eager.pop(sender, None)
                self.lazy[sender] = None
                out.append(Send(sender, wire.Prune(self.me)))
            return out
        self._take(msg_id, payload, size, now)
        if self._missing.pop(msg_id, None) is not None:
            self._due.pop(msg_id, None)
        out.append(Deliver(msg_id, payload, sender))
        if sender is not None and sender in self.lazy:
            del self.lazy[sender]
            self.eager[sender] = None
        self._spread(msg_id, payload, sender, now, out)
        return out

    def received(self, control: wire.Control, now: float) -> list[Action]:
        out: list[Action] = []
        sender = control.sender
        if sender not in self.eager and sender not in self.lazy:
            return out  # not a neighbour (any more): its tree moves mean nothing to us
        match control:
            case wire.IHave(ids=ids):
                self._announced(sender, ids, now)
            case wire.Graft(ids=ids):
                self.lazy.pop(sender, None)
                self.eager[sender] = None
                for msg_id in ids:
                    kept = self._cache.get(msg_id)
                    if kept is not None:
                        out.append(Push((sender,), msg_id, kept[1]))
            case wire.Prune():
                self.eager.pop(sender, None)
                self.lazy[sender] = None
        return out

    def tick(self, now: float) -> list[Action]:
        out: list[Action] = []
        for peer in [p for p, (at, _) in self._queues.items() if at <= now]:
            self._flush(peer, out)
        grafts: dict[str, list[str]] = {}
        timers = self._timers
        while timers and timers[0][0] <= now:
            deadline, msg_id = heapq.heappop(timers)
            if self._due.get(msg_id) != deadline:
                continue  # received meanwhile, or re-armed
            announcers = self._missing.get(msg_id)
            if not announcers:
                self._missing.pop(msg_id, None)
                del self._due[msg_id]
                continue
            peer = announcers.popleft()
            grafts.setdefault(peer, []).append(msg_id)
            self._arm(msg_id, now + self.config.graft_retry)
        for peer, ids in grafts.items():
            self.lazy.pop(peer, None)
            self.eager[peer] = None
            for start in range(0, len(ids), wire.MAX_IDS):
                out.append(
                    Send(peer, wire.Graft(self.me, tuple(ids[start : start + wire.MAX_IDS])))
                )
        return out

    def next_deadline(self) -> float:
        flush = min((at for at, _ in self._queues.values()), default=INFINITY)
        return min(flush, self._timers[0][0]) if self._timers else flush

    def has(self, msg_id: str) -> bool:
        return msg_id in self._seen

    # -- inside -------------------------------------------------------------------------

    def _spread(
        self, msg_id: str, payload: object, sender: str | None, now: float, out: list[Action]
    ) -> None:
        announceable = len(msg_id) <= wire.MAX_ID_LENGTH
        eager = [p for p in self.eager if p != sender]
        eager += [p for p in self.legacy if p != sender]
        if not announceable:
            eager += [p for p in self.lazy if p != sender]
        if eager:
            out.append(Push(tuple(eager), msg_id, payload))
        if announceable:
            for peer in self.lazy:
                if peer != sender:
                    self._queue(peer, msg_id, now, out)

    def _queue(self, peer: str, msg_id: str, now: float, out: list[Action]) -> None:
        queued = self._queues.get(peer)
        if queued is None:
            self._queues[peer] = (now + self.config.lazy_delay, [msg_id])
            return
        queued[1].append(msg_id)
        if len(queued[1]) >= wire.MAX_IDS:
            self._flush(peer, out)

    def _flush(self, peer: str, out: list[Action]) -> None:
        _, ids = self._queues.pop(peer)
        out.append(Send(peer, wire.IHave(self.me, tuple(ids))))

    def _announced(self, sender: str, ids: Iterable[str], now: float) -> None:
        c = self.config
        for msg_id in ids:
            if msg_id in self._seen:
                continue
            announcers = self._missing.get(msg_id)
            if announcers is None:
                if len(self._missing) >= c.missing_entries:
                    continue
                announcers = self._missing[msg_id] = deque()
            if sender not in announcers and len(announcers) < c.announcers:
                announcers.append(sender)
            if msg_id not in self._due:
                self._arm(msg_id, now + c.graft_timeout)

    def _arm(self, msg_id: str, deadline: float) -> None:
        self._due[msg_id] = deadline
        heapq.heappush(self._timers, (deadline, msg_id))

    def _take(self, msg_id: str, payload: object, size: int, now: float) -> None:
        c = self.config
        seen, cache = self._seen, self._cache
        while seen and (
            len(seen) >= c.seen_entries or next(iter(seen.values())) <= now - c.seen_ttl
        ):
            seen.popitem(last=False)
        seen[msg_id] = now
        while cache and (
            len(cache) >= c.cache_entries
            or self._cached_bytes + size > c.cache_bytes
            or next(iter(cache.values()))[0] <= now - c.cache_ttl
        ):
            self._cached_bytes -= cache.popitem(last=False)[1][2]
        if size <= c.cache_bytes:
            cache[msg_id] = (now, payload, size)
            self._cached_bytes += size
