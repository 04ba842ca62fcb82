"""The overlay router (extension 14): the engine hosts HyParView and Plumtree.  No trio.

Rules (PROTOCOL.md §7.8-§7.9 are normative; ``routing/overlay.py`` is the state machine):
- Installed by ``install(engine, config)`` when ``Config.routing`` is set: it is the
  engine's ``Router``, a ``Control`` (routing controls), a ``Linker`` (controls waiting for
  a link's banner) and a ``Watcher`` (links that fail), and it adds ``routing`` to the
  banner and the hello's ``Speaks`` (hello.py).
- A peer is an *overlay* peer when it said it speaks ``routing``: an outgoing link's banner,
  an incoming connection's hello.  Every other link is *legacy* (the Go peer, old whisper,
  a link whose banner has not come yet): it is sent every chat message, never a control.
- Routing controls are taken only from a connection whose hello named ``routing``, and only
  with that hello's ``Addr`` (§7.8); malformed ones count against it like invalid messages.
- Chat messages: ours are ``broadcast``, received ones ``gossip``ed with the sender named by
  the connection's hello (None for a legacy one) and the root named by the author (the
  pipeline's canonical ``Addr``: ``wire.root_of``); duplicates from overlay peers are shown
  to Plumtree (``duplicate``, the same root) so that it prunes.  Plumtree's pushes go to
  the overlay links it names (never to the author's), plus every legacy link and every
  link to a peer whose answer to our join or neighbour request is awaited (nothing said
  meanwhile is lost).
  A payload that needs a capability (presence) is flooded as ``FloodRouter`` does, unless
  it has a key (an announcement's ``ID``: ``Batch.key``), its author's tree exists here
  and every overlay neighbour speaks that capability: then it follows that tree
  (Plumtree's ``follow``: pushed and announced as a message, shaping nothing) and is
  flooded to the legacy links that speak it.  Its pushes, a graft's answer too, go only
  to links that speak the capability.
- Links follow membership: ``Connect`` dials (with the backlog replay), a control for a peer
  we have no link to dials one without replay; a link that is not in the active view any
  more lingers ``LINGER`` seconds (so that what was queued on it is written) and is closed.
  A link to an overlay peer that fails is closed at once and the peer reported down; the
  engine does not redial it.  A new overlay link we did not dial for membership (``-peer``,
  ``/connect``, discovery) is a contact: we join through it while our active view is short.
- At most ``OverlayConfig.max_links`` overlay links each way (``overlay_slots.py``): a
  dial for membership beyond it closes the link lingering longest, or is not made.
- Dialling (``overlay_dialling.py``): a message's or a hello's ``Addr`` is dialled as today
  (§5.1 step 8) only when neither the connection's writer nor it is known to speak routing.
- Timers: the overlay's deadlines, lingering links and deferred dials make ``next_deadline``;
  moved earlier by an input, a ``Tick`` action asks the shell to call ``Engine.tick`` then.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from ..addr import dialable
from ..peers import Dialled, Peer, State
from ..routing import wire
from ..routing.actions import Action as RouteAction
from ..routing.actions import Connect, Disconnect, Push, Send
from ..routing.overlay import Overlay, OverlayConfig
from .actions import Tick
from .overlay_dialling import ROUTING, DialPolicy
from .overlay_slots import OverlaySlots
from .stages import Batch, FloodRouter

if TYPE_CHECKING:
    from ..message import Message
    from .incoming import Incoming
    from .relay import Engine

log = logging.getLogger("whisper.overlay")

#: Seconds a link that left the active view stays open, so that its last controls go out.
LINGER = 2.0
#: Controls kept for a link whose banner has not come yet.
MAX_WAITING = 64
INFINITY = float("inf")


class Needing(NamedTuple):
    """A capability payload as Plumtree keeps it: its bytes and what a link must speak."""

    data: bytes
    needs: str


class OverlayRouter:
    def __init__(self, engine: Engine, config: OverlayConfig) -> None:
        self.engine = engine
        self.config = config
        self.overlay: Overlay | None = None  # made at start: it needs our address
        self._flood = FloodRouter()
        self._waiting: dict[str, list[bytes]] = {}  # peer -> controls awaiting its banner
        self._dialled: set[str] = set()  # links we opened for membership
        self._linger: dict[str, float] = {}  # peer -> when to close its link
        self.slots = OverlaySlots(
            config.max_links, engine.table.outgoing, self._dialled, self._keep, engine._close
        )
        self.dialling = DialPolicy(engine, self._remind)
        self._told = INFINITY  # the earliest Tick we asked the shell for
        self.controls_sent = 0
        self.controls_received = 0

    # -- lifetime ----------------------------------------------------------------------

    def started(self, now: float) -> None:
        engine = self.engine
        seed = self.config.seed
        rng = random.Random(f"{seed}:{engine.addr}") if seed is not None else random.Random()
        self.overlay = Overlay(engine.addr, rng, self.config.membership, self.config.broadcast)
        self._apply(self.overlay.join((), now), now)
        self._remind(now)

    def next_deadline(self) -> float:
        if self.overlay is None:
            return INFINITY
        deferred = self.dialling.next_deadline()
        return min(self.overlay.next_deadline(), *self._linger.values(), deferred)

    def tick(self, now: float) -> float:
        """Timers due: the overlay's, and lingering links; when to tick next."""
        if self.overlay is not None:
            self._apply(self.overlay.tick(now), now)
            self._close_lingering(now)
            self.dialling.dial_deferred(now)
        self._told = self.next_deadline()
        return self._told

    def discover(self, now: float) -> bool:
        """``/discover``: a shuffle now; False when we have no neighbour to start it with."""
        if self.overlay is None or not self.overlay.membership.active:
            return False
        self._apply(self.overlay.shuffle_now(now), now)
        return True

    def _keep(self) -> set[str]:
        """The peers whose links stay open: active neighbours, and answers we await."""
        membership = self.overlay.membership if self.overlay is not None else None
        return {*membership.active, *membership.asked()} if membership else set()

    def snapshot(self) -> tuple[list[str], list[str]]:
        """The active and the passive view."""
        if self.overlay is None:
            return [], []
        membership = self.overlay.membership
        return list(membership.active), list(membership.passive)

    # -- Router ----------------------------------------------------------------------

    def route(
        self, batch: Batch, links: Mapping[str, Peer]
    ) -> Iterable[tuple[Peer, Sequence[bytes]]]:
        overlay = self.overlay
        if overlay is None:
            return self._flood.route(batch, links)
        if batch.needs is not None:
            return self._route_needing(overlay, batch, links)
        now = self.engine.now
        legacy = self._legacy(overlay, links)
        # Legacy links are flooded as FloodRouter does, a batch at a time: everything but
        # what their peer wrote; only overlay neighbours need a decision per message.
        out: dict[str, tuple[Peer, list[bytes]]] = {
            link.addr: (link, list(data)) for link, data in self._flood.route(batch, legacy)
        }
        if len(legacy) == len(links) and not overlay.membership.active:
            return out.values()  # nobody in the overlay: nothing to push or announce
        source = batch.source
        sender = source.addr if source is not None and ROUTING in source.caps else None
        for data, message, author in zip(batch.data, batch.messages, batch.authors, strict=True):
            if message is None:  # a control payload of ours with no capability needed
                for addr, link in links.items():
                    if addr not in legacy:
                        self._add(out, link, data)
                continue
            if source is None:
                actions = overlay.broadcast(message.id, data, now, len(data))
            else:
                root = wire.root_of(author)
                actions = overlay.gossip(sender, message.id, data, now, len(data), root)
            for action in actions:
                if type(action) is Push:
                    for peer in action.peers:
                        link = links.get(peer)
                        if peer != author and link is not None and ROUTING in link.caps:
                            self._add(out, link, data)
                else:
                    self._apply([action], now)
        self._remind(now)
        return out.values()

    def _route_needing(
        self, overlay: Overlay, batch: Batch, links: Mapping[str, Peer]
    ) -> Iterable[tuple[Peer, Sequence[bytes]]]:
        """A capability payload: along its author's tree if it can (the module rules)."""
        needs, key, source, author = batch.needs, batch.key, batch.source, batch.authors[0]
        root = self.engine.addr if source is None else wire.root_of(author)
        if key is None or root is None or not overlay.tree.has_tree(root):
            return self._flood.route(batch, links)
        for peer in overlay.membership.active:
            link = links.get(peer)
            if link is not None and ROUTING in link.caps and needs not in link.caps:
                return self._flood.route(batch, links)
        legacy = self._legacy(overlay, links)
        out = {link.addr: (link, list(data)) for link, data in self._flood.route(batch, legacy)}
        sender = source.addr if source is not None and ROUTING in source.caps else None
        data, now = batch.data[0], self.engine.now
        for action in overlay.follow(sender, key, Needing(data, needs), now, len(data), root):
            if type(action) is not Push:
                self._apply([action], now)
                continue
            for peer in action.peers:
                link = links.get(peer)
                if peer == author or link is None or ROUTING not in link.caps:
                    continue  # legacy links have it already
                if needs in link.caps and peer not in legacy:
                    self._add(out, link, data)
        self._remind(now)
        return out.values()

    @staticmethod
    def _legacy(overlay: Overlay, links: Mapping[str, Peer]) -> dict[str, Peer]:
        """Links flooded: legacy ones, and those to peers asked to be neighbours (soon)."""
        legacy = {addr: link for addr, link in links.items() if ROUTING not in link.caps}
        for peer in overlay.membership.asked():
            if (link := links.get(peer)) is not None and ROUTING in link.caps:
                legacy[peer] = link
        return legacy

    @staticmethod
    def _add(out: dict[str, tuple[Peer, list[bytes]]], link: Peer, data: bytes) -> None:
        entry = out.get(link.addr)
        if entry is None:
            out[link.addr] = (link, [data])
        else:
            entry[1].append(data)

    def duplicate(self, conn: Incoming, message: Message, now: float) -> None:
        """A duplicate arrived on ``conn``: from an overlay neighbour, it prunes that link."""
        overlay = self.overlay
        if overlay is None or ROUTING not in conn.caps or conn.addr is None:
            return
        if overlay.tree.has(message.id):
            author = message.addr  # the pipeline's author: canonical when dialable
            root = wire.root_of(dialable(author) or author)
            self._apply(overlay.gossip(conn.addr, message.id, None, now, 0, root), now)
            self._remind(now)

    # -- Control ---------------------------------------------------------------------

    def control(self, obj: dict, conn: Incoming, now: float) -> bool:
        control = wire.decode(obj)
        if control is None:
            return False
        if isinstance(control, wire.Invalid):
            self.engine._invalid(conn, control.reason, now)
            return True
        if self.overlay is None or ROUTING not in conn.caps or control.sender != conn.addr:
            return True  # not from a peer that said it speaks routing, under its hello's Addr
        self.controls_received += 1
        if type(control) is wire.IHave:  # what we hold is not missing, however it came
            seen = self.engine.seen
            control = wire.IHave(control.sender, tuple(i for i in control.ids if i not in seen))
        self._apply(self.overlay.received(control, now), now)
        self._remind(now)
        return True

    # -- Linker and Watcher -------------------------------------------------------------

    def linked(self, link: Peer, now: float) -> list[bytes]:
        """A link's banner came: the controls that waited for it, if it speaks routing."""
        overlay = self.overlay
        waiting = self._waiting.pop(link.addr, [])
        if overlay is None:
            return []
        if ROUTING not in link.caps:
            if waiting or link.addr in self._dialled:  # not an overlay peer after all
                self._dialled.discard(link.addr)
                overlay.membership.contacts = tuple(
                    c for c in overlay.membership.contacts if c != link.addr
                )
                self._apply(overlay.link_down(link.addr, now), now)
            return []
        self.dialling.know(link.addr)
        membership = overlay.membership
        if link.addr not in self._dialled and link.addr not in membership.active:
            self._apply(overlay.contact(link.addr, now), now)  # -peer, /connect, discovery
            waiting += self._waiting.pop(link.addr, [])
            self._linger.setdefault(link.addr, now + LINGER)
        self.controls_sent += len(waiting)
        self._remind(now)
        return waiting

    def link_failed(self, link: Peer, now: float) -> None:
        overlay = self.overlay
        addr = link.addr
        if overlay is None:
            return
        if ROUTING not in link.caps and addr not in self._dialled and addr not in self._waiting:
            return  # a legacy link: the engine retries it as always
        self._forget(addr)
        self.engine.links.close(addr, "the overlay peer is gone")
        self._apply(overlay.link_down(addr, now), now)
        self._remind(now)

    # -- carrying out the overlay's actions -----------------------------------------------

    def _apply(self, actions: Sequence[RouteAction], now: float) -> None:
        for action in actions:
            kind = type(action)
            if kind is Send:
                self._send(action.peer, wire.encode(action.control), now)
            elif kind is Connect:
                self._linger.pop(action.peer, None)
                self._link(action.peer, now, replay=True)
            elif kind is Disconnect:
                self._linger.setdefault(action.peer, now + LINGER)
            elif kind is Push:
                shared_data, needs = action.payload, ROUTING
                if type(shared_data) is Needing:
                    shared_data, needs = shared_data
                if type(shared_data) is not bytes:
                    continue
                for peer in action.peers:  # a graft's answer
                    link = self.engine.table.outgoing.get(peer)
                    if link is not None and ROUTING in link.caps and needs in link.caps:
                        self.engine.links.put_control(link, shared_data, now)

    def _send(self, peer: str, data: bytes, now: float) -> None:
        link = self.engine.table.outgoing.get(peer)
        if link is None:
            link = self._link(peer, now, replay=False)
            if link is None:
                return
            self._linger.setdefault(peer, now + LINGER)
        if ROUTING in link.caps and link.state is State.CONNECTED:
            self.controls_sent += 1
            self.engine.links.put_control(link, data, now)
            return
        waiting = self._waiting.setdefault(peer, [])
        if len(waiting) < MAX_WAITING:
            waiting.append(data)

    def _link(self, peer: str, now: float, *, replay: bool) -> Peer | None:
        """Our link to ``peer``, dialled if there is none; None if it cannot be dialled."""
        links, table = self.engine.links, self.engine.table
        link = table.outgoing.get(peer)
        if link is not None:
            return link
        assert self.overlay is not None
        room, gone = self.slots.room(self._linger)
        if gone is not None:
            links.close(gone, "its slot went to a new overlay link")
            self._forget(gone)
        verdict = links.dial(peer, now, by_user=False, spoke=True) if room else Dialled.FULL
        link = table.outgoing.get(peer)
        if not verdict or link is None:
            log.debug("cannot dial overlay peer %s: %s", peer, verdict.value)
            self._apply(self.overlay.link_down(peer, now), now)
            return None
        self._dialled.add(peer)
        if not replay:
            link.replay = None  # a link for a control or two: no backlog replay
        return link

    def _close_lingering(self, now: float) -> None:
        assert self.overlay is not None
        membership = self.overlay.membership
        for peer, at in list(self._linger.items()):
            if at > now:
                continue
            del self._linger[peer]
            if peer in membership.active:
                continue
            if peer in membership.asked():  # an answer is awaited on it: a while longer
                self._linger[peer] = now + LINGER
                continue
            link = self.engine.table.outgoing.get(peer)
            if link is not None and (ROUTING in link.caps or peer in self._dialled):
                self._forget(peer)
                self.engine.links.close(peer, "not an overlay neighbour")

    def _forget(self, peer: str) -> None:
        self._waiting.pop(peer, None)
        self._dialled.discard(peer)
        self._linger.pop(peer, None)

    def _remind(self, now: float) -> None:
        """Ask the shell for a tick if our next deadline moved earlier than it knows."""
        deadline = self.next_deadline()
        if deadline < self._told:
            self._told = deadline
            self.engine.out.actions.append(Tick(max(deadline, now)))


def install(engine: Engine, config: OverlayConfig) -> OverlayRouter:
    """Make the engine route over the overlay (see the module rules)."""
    router = OverlayRouter(engine, config)
    engine.router = router
    engine.controls.append(router)
    engine.linkers.append(router)
    engine.watchers.append(router)
    engine.on_duplicate = router.duplicate
    engine.may_dial = router.dialling.may_dial
    engine.refuse_speaker = router.slots.refuse
    engine.speaks = (*engine.speaks, ROUTING)
    return router
