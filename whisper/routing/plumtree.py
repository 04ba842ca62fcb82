"""Plumtree broadcast (Leitao, Pereira, Rodrigues, SRDS 2007), as a pure state machine.

Fed the membership's neighbours (``neighbor_up``/``neighbor_down``), the messages (our own:
``broadcast``; received whole: ``gossip``), the controls (``received``) and the time
(``tick``), it returns actions (``actions.py``).  No sockets, no clock.

Rules (PROTOCOL.md §7.9 is normative):

- Every neighbour is *eager* (sent whole messages) or *lazy* (sent their IDs in ``IHave``),
  per *root*: the author of the message (its ``Addr``; ours for our own).  Each root has
  its own split (a ``Tree``), so that the eager links form a spanning tree per author once
  duplicates have pruned the rest.  One shared tree is what the paper describes, and it
  does not hold under concurrent senders: two messages from different authors, in flight at
  once, prune two different links of one cycle, and the tree falls apart into pieces that
  only grafts (0.6 s late, then) join again: 100 real peers at 10 msgs/s, the last peer
  after p99 1.5 s (0.12 s with these rules, in the same run).  A root's own messages take
  the same paths one after another, so its tree settles and stays.  A message without a
  root (None: an author we cannot name) uses the *default* tree, which is also what a new
  root's tree starts as: a new author's first message finds a tree, not a flood.  Only the messages
  routed by a new copy of it (a root's first here, or no root: ``_taught``) teach the
  default tree, by their arrivals and duplicates, and every graft does: it stays the
  paper's shared tree of first messages, and the trees of the authors that speak on do not
  pull it apart.  At most ``roots`` roots are kept
  (least recently used forgotten: they start again from the default).
- A new neighbour starts eager in every tree.  *Legacy* peers (they do not speak the
  extension: the Go reference peer, older whisper) are always eager and are never sent a
  control.
- A new message, ours or received, is delivered once (``Deliver``), pushed whole to every
  eager and legacy peer but the one it came from, and its ID queued for every lazy one.  The
  peer it came from becomes eager (it is our parent in the tree now).
- A duplicate from a neighbour makes that neighbour lazy in the message's root's tree (and
  in the default one if the message taught it), and we tell it ``Prune`` naming the root
  (with ``Default`` if it taught).  A ``Prune`` makes its sender lazy in the root's tree
  (and with ``Default`` in the default one); one without a root (older peers, or a message
  without one), in every tree.
- ``IHave`` IDs we have not received are *missing*: each remembers who announced it.
  ``graft_timeout`` after the first announcement, if the message has still not come, we send
  ``Graft`` to the first announcer (it becomes eager: the tree is repaired through it) and
  try the next one ``graft_retry`` later.  A graft, sent or received, makes the link eager
  in every tree: a graft repairs a cut, and a cut (a crash) is every tree's, so that each
  root's next message need not wait for a graft of its own (the other trees' next messages
  prune the link again where it closes a cycle).  A ``Graft`` we receive has us push its
  sender each message it names that we still hold.
- Lazy IDs wait ``lazy_delay`` and go out in one ``IHave`` per peer, at most
  ``wire.MAX_IDS`` each; a queue that reaches that many goes out at once, and so does the
  queue of a peer we push a whole message to (it rides along: one write, one wake-up of
  the peer).  An ``IHave`` costs its receiver a wake-up, as a whole message does: with
  0.1 s, at 10 msgs/s, each held one or two IDs; with 0.5 s and the ride along, 25 real
  peers on loopback spent a fifth less CPU per message.  The delay is only ever waited
  for when the tree is cut, and there a graft comes ``lazy_delay`` + ``graft_timeout``
  after the message passed the announcer.  A message whose ID is longer than
  ``wire.MAX_ID_LENGTH`` cannot be announced: it is pushed to lazy peers too.
- A payload that must not shape the trees (a presence announcement: it is not a chat
  message, and a new link replays the latest of each) can ``follow`` the tree of a root
  that has one: pushed and announced as a new message is, and neither its arrival nor its
  duplicates move a link.  (Routed through the trees as messages, announcements created
  and pruned trees of their own that disagreed with the chat's, and the duplicates of
  chat messages went from 0.02 to 0.7-1.0 per delivery in the 60-peer test.)
- A lost neighbour's queue, announcements and place in the tree are forgotten.
- Bounded: roots (``roots``), received IDs (``seen_ttl``, ``seen_entries``), messages kept
  for grafts (``cache_ttl``, ``cache_entries``, ``cache_bytes``), missing IDs
  (``missing_entries``, at most ``announcers`` each).  Expiry is lazy, oldest first, on
  new messages.
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
    lazy_delay: float = 0.5
    graft_timeout: float = 0.25
    graft_retry: float = 0.25
    cache_ttl: float = 60.0
    cache_entries: int = 4096
    cache_bytes: int = 16 << 20
    seen_ttl: float = 600.0
    seen_entries: int = 100_000
    missing_entries: int = 4096
    announcers: int = 8
    roots: int = 1024


class Tree:
    """One root's split of the neighbours: whole messages to ``eager``, IDs to ``lazy``."""

    __slots__ = ("eager", "lazy")

    def __init__(self, eager: dict[str, None], lazy: dict[str, None]) -> None:
        self.eager = eager
        self.lazy = lazy

    def make_eager(self, peer: str) -> None:
        self.lazy.pop(peer, None)
        self.eager[peer] = None

    def make_lazy(self, peer: str) -> None:
        self.eager.pop(peer, None)
        self.lazy[peer] = None


class Plumtree:
    def __init__(self, me: str, config: PlumtreeConfig | None = None) -> None:
        self.me = me
        self.config = config or PlumtreeConfig()
        self.default = Tree({}, {})
        self.eager = self.default.eager  # the default tree's (every neighbour is in one)
        self.lazy = self.default.lazy
        self._trees: OrderedDict[str, Tree] = OrderedDict()  # root -> its tree
        self.legacy: dict[str, None] = {}
        self._queues: dict[str, tuple[float, list[str]]] = {}  # peer -> (flush at, IDs)
        self._missing: dict[str, deque[str]] = {}  # ID -> who announced it, first first
        self._timers: list[tuple[float, str]] = []  # (deadline, ID); stale entries skipped
        self._due: dict[str, float] = {}  # ID -> its live timer's deadline
        self._seen: OrderedDict[str, float] = OrderedDict()  # ID -> when received
        #: IDs of messages that were routed by a new copy of the default tree (their root's
        #: first here, or no root): only their duplicates move the default tree
        self._taught: dict[str, None] = {}
        self._cache: OrderedDict[str, tuple[float, object, int]] = OrderedDict()  # for grafts
        self._cached_bytes = 0

    # -- membership ---------------------------------------------------------------------

    def neighbor_up(self, peer: str) -> None:
        if peer in self.lazy or peer == self.me:
            return
        self.eager[peer] = None
        for tree in self._trees.values():
            if peer not in tree.lazy:
                tree.eager[peer] = None

    def legacy_up(self, peer: str) -> None:
        self.legacy[peer] = None

    def neighbor_down(self, peer: str) -> None:
        for tree in (self.default, *self._trees.values()):
            tree.eager.pop(peer, None)
            tree.lazy.pop(peer, None)
        self.legacy.pop(peer, None)
        self._queues.pop(peer, None)
        for announcers in self._missing.values():
            if peer in announcers:
                announcers.remove(peer)

    # -- messages -----------------------------------------------------------------------

    def broadcast(self, msg_id: str, payload: object, now: float, size: int = 0) -> list[Action]:
        """Our own new message (its root is us)."""
        out: list[Action] = []
        if msg_id in self._seen:
            return out
        self._take(msg_id, payload, size, now)
        self._spread(msg_id, payload, None, now, out, self.tree(self.me))
        return out

    def gossip(
        self,
        sender: str | None,
        msg_id: str,
        payload: object,
        now: float,
        size: int = 0,
        root: str | None = None,
    ) -> list[Action]:
        """A whole message from ``sender`` (None: a connection we cannot name), written by
        ``root`` (None: an author we cannot name)."""
        out: list[Action] = []
        if msg_id in self._seen:
            if sender is not None and (sender in self.eager or sender in self.lazy):
                learns = msg_id in self._taught  # routed by a new copy of the default tree
                if learns:
                    self.default.make_lazy(sender)
                if root is not None:
                    self.tree(root).make_lazy(sender)
                out.append(Send(sender, wire.Prune(self.me, root, learns and root is not None)))
            return out
        new_root = root is None or root not in self._trees
        self._take(msg_id, payload, size, now)
        if new_root:
            self._taught[msg_id] = None
        out.append(Deliver(msg_id, payload, sender))
        tree = self.tree(root)
        if sender is not None:
            if sender in tree.lazy:
                tree.make_eager(sender)
            if new_root and sender in self.lazy:
                self.default.make_eager(sender)
        self._spread(msg_id, payload, sender, now, out, tree)
        return out

    def follow(
        self, sender: str | None, msg_id: str, payload: object, now: float, size: int, root: str
    ) -> list[Action]:
        """A payload that travels ``root``'s tree, which must exist (``has_tree``), without
        shaping it (presence): sent as a new message is (``sender`` None: ours), but
        neither its arrival nor a duplicate of it moves a link, in any tree."""
        out: list[Action] = []
        if msg_id in self._seen:
            return out
        self._take(msg_id, payload, size, now)
        out.append(Deliver(msg_id, payload, sender))
        self._spread(msg_id, payload, sender, now, out, self.tree(root))
        return out

    def has_tree(self, root: str) -> bool:
        return root in self._trees

    def tree(self, root: str | None) -> Tree:
        """The tree of ``root`` (the default one for None), made from the default if new."""
        if root is None:
            return self.default
        trees = self._trees
        tree = trees.get(root)
        if tree is not None:
            trees.move_to_end(root)
            return tree
        tree = trees[root] = Tree(dict(self.eager), dict(self.lazy))
        if len(trees) > self.config.roots:
            trees.popitem(last=False)
        return tree

    def received(self, control: wire.Control, now: float) -> list[Action]:
        out: list[Action] = []
        sender = control.sender
        if sender not in self.eager and sender not in self.lazy:
            return out  # not a neighbour (any more): its tree moves mean nothing to us
        match control:
            case wire.IHave(ids=ids):
                self._announced(sender, ids, now)
            case wire.Graft(ids=ids):
                self._graft(sender)
                for msg_id in ids:
                    kept = self._cache.get(msg_id)
                    if kept is not None:
                        out.append(Push((sender,), msg_id, kept[1]))
            case wire.Prune(root=root, default=default):
                if root is None:  # from a peer that keeps one tree: ours all follow
                    for tree in (self.default, *self._trees.values()):
                        tree.make_lazy(sender)
                else:
                    self.tree(root).make_lazy(sender)
                    if default:
                        self.default.make_lazy(sender)
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
            self._graft(peer)
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

    def _graft(self, peer: str) -> None:
        """A graft, sent or received: the link to ``peer`` is eager in every tree."""
        for tree in (self.default, *self._trees.values()):
            tree.make_eager(peer)

    def _spread(
        self,
        msg_id: str,
        payload: object,
        sender: str | None,
        now: float,
        out: list[Action],
        tree: Tree,
    ) -> None:
        announceable = len(msg_id) <= wire.MAX_ID_LENGTH
        eager = [p for p in tree.eager if p != sender]
        eager += [p for p in self.legacy if p != sender]
        if not announceable:
            eager += [p for p in tree.lazy if p != sender]
        if eager:
            out.append(Push(tuple(eager), msg_id, payload))
            queues = self._queues
            if queues:  # IDs waiting for a peer we write to anyway go with this message
                for peer in eager:
                    if peer in queues:
                        self._flush(peer, out)
        if announceable:
            for peer in tree.lazy:
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
        """A new message: received (no longer missing, its graft timer void) and kept."""
        if self._missing.pop(msg_id, None) is not None:
            self._due.pop(msg_id, None)
        c = self.config
        seen, cache = self._seen, self._cache
        while seen and (
            len(seen) >= c.seen_entries or next(iter(seen.values())) <= now - c.seen_ttl
        ):
            self._taught.pop(seen.popitem(last=False)[0], None)
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
