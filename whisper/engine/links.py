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
- ``put`` never blocks: a queue that is full drops the message for that peer only, and the
  first drop of each overflow is logged.
"""

from __future__ import annotations

import logging

from ..backlog import Backlog
from ..connmgr import idle_for
from ..events import Disconnected, GaveUp, PeerLinked, PeerLost
from ..flood import FloodControl
from ..peers import ConnectionConfig, Dialled, Peer, PeerTable, State
from ..sendqueue import SendQueue
from .actions import CloseLink, Dial, Outbox, Retry

log = logging.getLogger("whisper.engine")


class Links:
    def __init__(
        self,
        table: PeerTable,
        backlog: Backlog,
        flood: FloodControl | None,
        outbox: Outbox,
        config: ConnectionConfig,
    ) -> None:
        self.table = table
        self.backlog = backlog
        self.flood = flood
        self.out = outbox
        self.config = config

    def dial(self, addr: str, now: float, *, by_user: bool, spoke: bool = False) -> Dialled:
        """Open a link to ``addr`` (canonical ``IP:PORT``) unless it is refused; when the
        table is full it may take the slot of a link that gives way (``connmgr.py``).
        ``spoke``: a message of ``addr``'s own was just accepted."""
        if self.flood is not None and self.flood.blocked(addr, now):
            return Dialled.BLACKLISTED
        admission = self.table.should_dial(addr, now, by_user=by_user, spoke=spoke)
        if not admission:
            return admission.verdict
        if admission.replaces is not None:
            self.give_way(admission.replaces, addr, now)
        link = self.table.outgoing[addr]
        link.queue = SendQueue(self.config.queue_bytes, self.config.queue_items)
        link.replay = self.backlog.for_link(addr)
        self.out.actions.append(Dial(link))
        return Dialled.STARTED

    def give_way(self, peer: Peer, newcomer: str, now: float) -> None:
        """Close the slot the table gave to ``newcomer`` (it has dropped ``peer`` already)."""
        if peer.outgoing:
            self.out.actions.append(CloseLink(peer, f"gave way to {newcomer}"))
        elif peer.close is not None:
            peer.close()
        way = "link to" if peer.outgoing else "connection from"
        log.info("closed the %s %s (%s) for %s", way, peer.addr, idle_for(peer, now), newcomer)

    def connected(self, link: Peer, now: float, caps: frozenset[str]) -> None:
        self.table.connected(link.addr, now)
        link.caps = caps
        link.pending = link.replay.connected() if link.replay is not None else b""
        self.out.emit(PeerLinked(link.addr))

    def data_to_send(self, link: Peer) -> bytes:
        if link.pending:
            data, link.pending = link.pending, b""
            return data
        return link.queue.take() if link.queue is not None else b""

    def failed(self, link: Peer, error: str, now: float) -> None:
        if self.table.outgoing.get(link.addr) is not link:
            return
        if link.state is State.CONNECTED:
            if link.replay is not None:
                link.replay.lost()
            link.pending = b""
            self.out.emit(PeerLost(link.addr, error))
        delay = self.table.failed(link.addr, now, error)
        if delay is None:
            if link.queue is not None:
                link.queue.clear()
            self.out.emit(GaveUp(link.addr, error))
            self.out.actions.append(CloseLink(link, f"gave up: {error}"))
            return
        level = logging.WARNING if link.failures == 1 else logging.INFO
        log.log(level, "cannot reach %s: %s; retrying in %.1fs", link.addr, error, delay)
        self.out.actions.append(Retry(link, now + delay))

    def redial(self, link: Peer, now: float) -> None:
        self.table.connecting(link.addr, now)

    def ended(self, link: Peer) -> None:
        """The link's task is over, whatever the reason."""
        if self.table.outgoing.get(link.addr) is link:
            self.table.remove(link.addr)

    def close(self, addr: str, reason: str) -> Peer | None:
        """Close the link to ``addr`` if there is one (flood control cut its peer ...)."""
        link = self.table.outgoing.get(addr)
        if link is None:
            return None
        self.table.remove(addr)
        self.out.actions.append(CloseLink(link, reason))
        return link

    def disconnect(self, addr: str, now: float) -> bool:
        """The user closes a link; it is not redialled because a message names it for a while."""
        if self.close(addr, "disconnected by the user") is None:
            return False
        self.table.forget(addr, now)
        self.out.emit(Disconnected(addr))
        return True

    def put(self, link: Peer, parts: list[bytes], data: bytes, now: float) -> None:
        queue = link.queue
        if queue is None:
            return
        overflowing = queue.overflowing_since is not None
        if queue.put_batch(parts, data, now) and not overflowing:
            log.warning("queue for %s is full: dropping messages for this peer", link.addr)
        self.out.woken[link.addr] = link
