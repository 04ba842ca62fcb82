"""Outgoing links as the engine keeps them: dial, connected, failed, closed.  Pure state.

Rules (PROTOCOL.md §5.2):
- A link is its ``Peer`` in the peer table (``peers.py``): the table's ``outgoing`` is the
  one list of links; the shell only runs a task per ``Dial`` and stops it on ``CloseLink``.
- ``dial`` consults flood control (a blacklisted ``Addr`` is not dialled) and the table
  (``Dialled``: why not); a new link gets a send queue and its backlog replay (extension
  11).  A link or connection that gives way to a newcomer (PROTOCOL.md §5.4) is closed.
- On each connection the replay owed is handed out first (``data_to_send``), then whatever
  is queued.  A connection that ends marks the replay, so that the next one is replayed only
  what its queue does not hold.  The queue is kept across reconnections.
- A failure waits as the table says (``Retry``), or gives up: the queue is emptied, the front
  ends told (``GaveUp``) and the task stopped (``CloseLink``).
- ``route`` puts a batch on the links the router picks; the links that get the same list of
  messages get one ``Shared`` of them, joined once and counted once by the send budget.
  With flood control on, a link is sent at most what a receiver's new connection accepts
  (``flood.LinkBudget``, a share kept for light messages); past it a message is dropped for
  that link only.
- ``put`` never blocks: a queue that is full, or among the longest when all of them are at
  the send budget, drops messages for that peer only; each overflow episode is logged once.
- A link's replay is the backlog's own ``bytes``, handed out a message at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..backlog import Backlog
from ..connmgr import idle_for
from ..events import Disconnected, GaveUp, PeerLinked, PeerLost
from ..flood import FloodControl
from ..peers import ConnectionConfig, Dialled, Peer, PeerTable, State
from ..sendqueue import SendBudget, SendQueue, Shared
from .actions import CloseLink, Dial, Outbox, Retry
from .snapshots import Stats
from .stages import Batch, Router

log = logging.getLogger("whisper.engine")


class Links:
    def __init__(
        self,
        table: PeerTable,
        backlog: Backlog,
        flood: FloodControl | None,
        outbox: Outbox,
        config: ConnectionConfig,
        stats: Stats,
    ) -> None:
        self.table = table
        self.backlog = backlog
        self.flood = flood
        self.out = outbox
        self.config = config
        self.stats = stats
        self.send_budget = SendBudget(config.send_budget)  # every link's queue together

    def dial(
        self, addr: str, now: float, *, by_user: bool, spoke: bool = False, reverse: bool = False
    ) -> Dialled:
        """Open a link to ``addr`` (canonical ``IP:PORT``) unless it is refused; when the
        table is full it may take the slot of a link that gives way (``connmgr.py``).
        ``spoke``: a message of ``addr``'s own was just accepted.  ``reverse``: no dial, the
        link is written on a connection its peer opened (``twoway.py`` says ``Reverse``)."""
        if self.flood is not None and self.flood.blocked(addr, now):
            return Dialled.BLACKLISTED
        admission = self.table.should_dial(addr, now, by_user=by_user, spoke=spoke)
        if not admission:
            return admission.verdict
        if admission.replaces is not None:
            self.give_way(admission.replaces, addr, now)
        link = self.table.outgoing[addr]
        cfg = self.config
        link.queue = SendQueue(cfg.queue_bytes, cfg.queue_items, budget=self.send_budget)
        link.replay = self.backlog.for_link(addr)
        if self.flood is not None:  # never more than a receiver's new connection accepts
            link.budget = self.flood.link_budget(now)
        link.reverse = reverse
        if not reverse:
            self.out.actions.append(Dial(link))
        return Dialled.STARTED

    def give_way(self, peer: Peer, newcomer: str, now: float) -> None:
        """Close the slot the table gave to ``newcomer`` (it has dropped ``peer`` already)."""
        if peer.outgoing:
            self.out.actions.append(CloseLink(peer, f"gave way to {newcomer}"))
        elif peer.close is not None:
            peer.close("gave way")
        way = "link to" if peer.outgoing else "connection from"
        log.info("closed the %s %s (%s) for %s", way, peer.addr, idle_for(peer, now), newcomer)

    def connected(self, link: Peer, now: float, caps: frozenset[str]) -> None:
        self.table.connected(link.addr, now)
        link.caps = caps
        link.asked_reverse = False
        link.pending = link.replay.connected() if link.replay is not None else iter(())
        self.out.emit(PeerLinked(link.addr))

    def data_to_send(self, link: Peer) -> bytes:
        replayed = next(link.pending, None)  # the backlog's own bytes, a message at a time
        if replayed is not None:
            return replayed
        return link.queue.take() if link.queue is not None else b""

    def failed(self, link: Peer, error: str, now: float, *, stalled: bool = False) -> None:
        if self.table.outgoing.get(link.addr) is not link:
            return
        lost = link.state is State.CONNECTED
        if lost:
            if link.replay is not None:
                link.replay.lost()
            link.pending = iter(())
            self.out.emit(PeerLost(link.addr, error))
        if link.reverse:  # its connection is gone: nothing to redial
            self.table.remove(link.addr)
            self.out.actions.append(CloseLink(link, f"its connection ended: {error}"))
            return
        delay = self.table.failed(link.addr, now, error, stalled=stalled)
        if delay is None:
            if link.queue is not None:
                link.queue.close()  # and out of the send budget
            self.out.emit(GaveUp(link.addr, error))
            self.out.actions.append(CloseLink(link, f"gave up: {error}"))
            return
        # A first dial that fails may be a typo worth a warning; a lost link's retries are not.
        level = logging.WARNING if link.failures == 1 and not lost else logging.INFO
        log.log(level, "cannot reach %s: %s; retrying in %.1fs", link.addr, error, delay)
        self.out.actions.append(Retry(link, now + delay))

    def redial(self, link: Peer, now: float) -> None:
        self.table.connecting(link.addr, now)

    def ended(self, link: Peer) -> None:
        """The link's task is over, whatever the reason."""
        if self.table.outgoing.get(link.addr) is link:
            self.table.remove(link.addr)
        if link.queue is not None:
            link.queue.close()  # and out of the send budget

    def close(self, addr: str, reason: str) -> Peer | None:
        """Close the link to ``addr`` if there is one (flood control cut its peer ...)."""
        link = self.table.outgoing.get(addr)
        if link is None:
            return None
        self.table.remove(addr)
        self.out.actions.append(CloseLink(link, reason))
        return link

    def disconnect(self, addr: str, now: float) -> bool:
        """The user closes a link; it is not redialled because a message names it for a while.
        With no outgoing link to ``addr``, an incoming connection from it (its remote
        address, as ``peers()`` lists it) is closed instead; its peer may dial again."""
        if self.close(addr, "disconnected by the user") is not None:
            self.table.forget(addr, now)
        elif (conn := self.table.incoming.get(addr)) is not None and conn.close is not None:
            self.table.closed(addr)
            conn.close("disconnected by the user")
        else:
            return False
        self.out.emit(Disconnected(addr))
        return True

    def route(self, router: Router, batch: Batch, now: float) -> None:
        """Queue a batch on the links the router picks; each list of parts joined once."""
        links = self.table.outgoing
        if not batch.data or not links:
            return
        joined: dict[int, tuple[Sequence[bytes], Shared]] = {}  # id(parts) -> (parts, batch)
        lights: dict[int, bool] | None = None
        for link, parts in router.route(batch, links):
            if link.budget is not None and parts:  # flood control (flood.py, LinkBudget)
                if lights is None:
                    lights = batch.lights_by_data()
                parts = self._within(link, parts, lights, now)
            if not parts:
                continue
            hit = joined.get(id(parts))
            if hit is None:
                data = parts[0] if len(parts) == 1 else b"".join(parts)
                shared = Shared(data, len(parts))  # counted once by the send budget
                joined[id(parts)] = (parts, shared)  # parts kept alive: its id stays its own
            else:
                shared = hit[1]
            self.put(link, parts, shared, now)

    def _within(
        self, link: Peer, parts: Sequence[bytes], lights: dict[int, bool], now: float
    ) -> Sequence[bytes]:
        """What of ``parts`` the link's budget lets through (the same list if all of it):
        past it a message is dropped for this link only, and counted (``held_back``)."""
        take = link.budget.take  # type: ignore[union-attr]
        kept = [d for d in parts if take(now, lights.get(id(d), True))]
        if len(kept) == len(parts):
            return parts
        self.stats.held_back += len(parts) - len(kept)
        return kept

    def put_control(self, link: Peer, data: bytes, now: float) -> None:
        """One payload for ``link`` alone (a control, a hello, a graft's answer)."""
        self.put(link, [data], Shared(data, 1), now)

    def put(self, link: Peer, parts: Sequence[bytes], batch: Shared, now: float) -> None:
        queue = link.queue
        if queue is None:
            return
        queue.put_batch(parts, batch, now)
        self.out.woken[link.addr] = link
        if queue.overflows != link.overflows_logged:  # this batch, or a cut by the budget
            self.log_overflows()

    def log_overflows(self) -> None:
        """Log each overflow episode of each link once (the budget may cut other links)."""
        for link in self.table.outgoing.values():
            queue = link.queue
            if queue is not None and queue.overflows != link.overflows_logged:
                link.overflows_logged = queue.overflows
                log.warning("dropping messages for %s: %s", link.addr, queue.overflow)
