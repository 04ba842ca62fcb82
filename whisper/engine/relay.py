"""The relay engine: the whole whispernet pipeline as one synchronous object.  No trio.

Rules (PROTOCOL.md §5 is normative; ``engine/__init__.py`` draws the pipeline):
- The engine is fed what happened, with the time (``now``: any monotonic clock in seconds;
  the wall clock is ``Config.wall_clock``), and returns the ``actions.py`` to carry out.
  It never blocks, sleeps, reads a clock of its own or touches a socket.
- ``received(conn, objects, now)`` takes every object of one received chunk as one batch:
  the freshness window is computed once, the accepted messages are routed together and
  each link gets one queue entry per batch.  A message whose ``Addr`` is new is dialled
  after what came before it was routed, so the new link is replayed what preceded it and
  sent what follows (as when messages are handled one by one).
- Malformed input (a codec ``Violation``) drops that connection and nothing else.  Invalid
  messages (wrong types, hash mismatch, outside the window, refused by a ``Check``) are
  dropped and counted against the connection (flood control's penalty points); the first
  ``LOGGED_PER_CONNECTION`` of them are logged.
- Flood control (``flood.py``) cuts a connection by raising ``FloodCut`` from ``admit`` or
  ``penalise``; it is caught right there, at the call, and becomes ``CloseIncoming``, a
  ``Blacklisted`` event and, for the flooder's ``Addr``, ``CloseLink``.
- Our own messages are marked seen before they are sent: peers that echo them are ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from .. import codec
from ..addr import dialable, format_hostport, parse_hostport
from ..backlog import HISTORY_KEY, Backlog, replay_age
from ..budget import Budget
from ..codec import Violation, encode_object
from ..config import Config
from ..events import Blacklisted, Delivered, Dropped
from ..files import FileStore
from ..flood import Entry, FloodControl, FloodCut
from ..freshness import Window
from ..ids import HASH_PREFIX, IdCheck, check_id, hashed_id, random_id
from ..message import SECONDS_CUTOFF, InvalidMessage, Message, NotChat
from ..peers import Dialled, Peer, PeerTable
from ..seen import SeenCache
from .actions import Action, CloseIncoming, Outbox
from .incoming import LOGGED_PER_CONNECTION, Incoming, over_budget
from .links import Links
from .snapshots import BlacklistEntry, PeerInfo, Stats, blacklist_entries, peer_infos
from .stages import (
    BacklogKeeper,
    Batch,
    Check,
    Control,
    FilesView,
    FloodRouter,
    Keeper,
    Router,
    View,
)

log = logging.getLogger("whisper.engine")
_tuple = tuple.__new__  # Delivered(...) without its Python-level __new__: once per message


class Engine:
    def __init__(self, config: Config | None = None) -> None:
        self.config = cfg = config or Config()
        self.nick = cfg.nick
        self.addr = ""  # our advertised IP:PORT, known once the shell has bound (start)
        self.stats = Stats()
        self.seen = SeenCache(cfg.seen.ttl, cfg.seen.max_entries)
        self.table = PeerTable.from_config(cfg.connections)
        self.flood = FloodControl(cfg.flood) if cfg.flood else None
        self.backlog = Backlog(
            cfg.backlog.entries,
            cfg.backlog.max_bytes,
            clock=cfg.wall_clock,
            max_age=self._replay_age,
            max_size=cfg.limits.max_size,
        )
        self.files = FileStore(cfg.files.max_files, cfg.files.max_bytes, clock=cfg.wall_clock)
        self.out = Outbox()
        self.receive_budget: Budget[Incoming] = Budget(cfg.connections.receive_budget)
        self.links = Links(self.table, self.backlog, self.flood, self.out, cfg.connections)
        # -- extension points (stages.py) --
        self.checks: list[Check] = []
        self.controls: list[Control] = []
        self.keepers: list[Keeper] = [BacklogKeeper(self.backlog)]
        self.views: list[View] = [
            FilesView(self.files, self.out, autosave=cfg.files.downloads is not None)
        ]
        self.router: Router = FloodRouter()
        self.greeting = b""  # written first on every accepted connection (a capability banner)
        self.now = 0.0  # the time of the last input (or of the one being handled)

    # -- lifetime ----------------------------------------------------------------------

    def start(self, addr: str, now: float) -> list[Action]:
        """The shell listens at ``addr`` (our advertised IP:PORT): dial the configured peers."""
        self.now = now
        self.addr = self.table.self_addr = addr
        for peer in self.config.peers:
            self.links.dial(format_hostport(*parse_hostport(peer)), now, by_user=True)
        return self.out.take()

    # -- incoming connections ------------------------------------------------------------

    def open_incoming(self, remote: str, now: float) -> tuple[Incoming | str, list[Action]]:
        """A connection from ``remote`` (IP:PORT) was accepted: its handle, or why to close
        it.  It may take the slot of one that gives way (PROTOCOL.md §5.4): that one is
        closed (``CloseIncoming`` or ``CloseLink`` in the actions)."""
        self.now = now
        flood = None
        if self.flood is not None:
            flood = self.flood.open(remote, now, self.addr)
            if flood is None:
                log.info("refused %s: blacklisted by flood control", remote)
                return "blacklisted by flood control", []
        conn = Incoming(remote, self.config.limits.decoder(), flood)
        conn.greeting = self.greeting
        admission = self.table.admit(remote, now, lambda: self._close(conn, "gave way"))
        if not admission:
            log.warning("refused %s: %s", remote, admission.refused)
            conn.decoder.close()
            return admission.refused, []
        if admission.replaces is not None:
            self.links.give_way(admission.replaces, remote, now)
        log.debug("accepted %s", remote)
        return conn, self.out.take()

    def closed_incoming(self, conn: Incoming) -> None:
        self.table.closed(conn.remote)
        self.receive_budget.release(conn)
        conn.decoder.close()

    def receive_data(self, conn: Incoming, data: bytes, now: float) -> list[Action]:
        """Bytes read from ``conn`` (``b""``: it reached EOF)."""
        if conn.closed is not None:
            return []
        items = conn.decoder.feed(data) if data else conn.decoder.feed_eof()
        actions = self.received(conn, items, now) if items else []
        if conn.closed is not None or not self._hold(conn):
            return actions
        return actions + self.out.take()

    def _hold(self, conn: Incoming) -> bool:
        """Charge what ``conn``'s unfinished message holds (PROTOCOL.md §5.3); while the
        receive budget is spent, drop the connection holding the most.  False: nothing was."""
        victims = over_budget(self.receive_budget, conn)
        for victim, reason in victims:
            self.stats.over_budget += 1
            self.out.emit(Dropped(victim.remote, reason))
            self._close(victim, reason)
        return bool(victims)

    def received(
        self, conn: Incoming, items: Iterable[dict[str, Any] | Violation], now: float
    ) -> list[Action]:
        """The objects of one chunk read from ``conn``, decoded: the pipeline, as one batch."""
        self.now = now
        if conn.closed is not None:
            return []
        # Once per message below: what it needs is in locals (an attribute load each costs).
        seen, outgoing, checks, views = self.seen, self.table.outgoing, self.checks, self.views
        window = Window(self.config.wall_clock(), seen.span(now), self.config.seen.skew)
        low, high, old = window.low, window.high, window.history
        events, from_wire = self.out.events, Message.from_wire
        batch = Batch(conn)
        add_data, add_message, add_author = batch.appenders()
        counted = dropped = 0
        for obj in items:
            if type(obj) is Violation:
                self._violation(conn, obj.reason)
                break
            counted += 1
            try:
                message = from_wire(obj)
            except NotChat:
                if not any(c.control(obj, conn, now) for c in self.controls):
                    self.stats.ignored += 1
                continue
            except InvalidMessage as exc:
                if self._invalid(conn, str(exc), now):
                    break
                continue
            mid = message.id
            if mid in seen:
                dropped += 1
                continue
            ts = message.timestamp  # in seconds (Go) or milliseconds: see Message.timestamp_ms
            ms = None if not ts else ts * 1000 if ts < SECONDS_CUTOFF else ts
            reason = None
            if mid.startswith(HASH_PREFIX) and check_id(message) is IdCheck.MISMATCH:
                reason = f"ID {mid[:80]!r} does not match its payload"
            elif ms is not None and not low < ms < high:
                reason = window.check(ms)
            if reason is None and checks:
                reason = next(filter(None, (c.check(message, conn, now) for c in checks)), None)
            if reason is not None:
                if self._invalid(conn, reason, now):
                    break
                continue
            if conn.flood is not None and not self._admit(conn, message.addr, now):
                if conn.closed is not None:
                    break
                continue
            seen.add(mid, now)
            data = encode_object(obj)  # message.fields is obj: relayed as received
            history = obj.get(HISTORY_KEY) is True or (ms is not None and ms < old)
            event: Delivered | None = _tuple(Delivered, (message, False, history, None, len(data)))
            for view in views:
                event = view.view(event)  # type: ignore[arg-type]
                if event is None:
                    break
            else:
                events.append(event)
            author = message.addr  # usually a link's key: one dict lookup; else "1.2.3.4:05" is
            link = outgoing.get(author)
            canonical = author if link is not None else dialable(author)  # 1.2.3.4:5, once
            if link is None and canonical is not None:
                link = outgoing.get(canonical)
            add_data(data)
            add_message(message)
            add_author(canonical or author)
            if link is not None:
                link.produced = now  # its Addr spoke (connmgr.py); see PeerTable.delivered
            elif canonical is not None:  # a new Addr: what came before goes out first
                self._relay(batch, now)
                batch = Batch(conn)
                add_data, add_message, add_author = batch.appenders()
                self.links.dial(canonical, now, by_user=False, spoke=True)
        stats = self.stats
        stats.received += counted
        stats.duplicates += dropped
        self._relay(batch, now)
        return self.out.take()

    def _relay(self, batch: Batch, now: float) -> None:
        """Accepted messages: the keepers take note, then the router sends them on."""
        if not batch.data:
            return
        if batch.source is not None:
            self.stats.delivered += len(batch)
            self.table.delivered(batch.source.remote, None, now)  # the connection produced
        kept = batch.kept()
        for keeper in self.keepers:
            keeper.keep(kept, batch.source is None, now)
        self.links.route(self.router, batch, now)

    def _violation(self, conn: Incoming, reason: str) -> None:
        self.stats.violations += 1
        self.out.emit(Dropped(conn.remote, reason))
        self._close(conn, reason)

    def _invalid(self, conn: Incoming, reason: str, now: float) -> bool:
        """Count an invalid message; True if that cut the connection."""
        self.stats.invalid += 1
        conn.invalid += 1
        if conn.invalid <= LOGGED_PER_CONNECTION:
            log.warning("ignored a message from %s: %s", conn.remote, reason)
            if conn.invalid == LOGGED_PER_CONNECTION:
                log.warning("not logging further invalid messages from %s", conn.remote)
        if conn.flood is None:
            return False
        try:
            conn.flood.penalise(now)
        except FloodCut as cut:
            self._cut(conn, cut)
            return True
        return False

    def _admit(self, conn: Incoming, addr: str, now: float) -> bool:
        try:
            return conn.flood.admit(addr, now)  # type: ignore[union-attr]
        except FloodCut as cut:
            self._cut(conn, cut)
            return False

    def _cut(self, conn: Incoming, cut: FloodCut) -> None:
        self._close(conn, str(cut))
        if cut.refused:  # a blacklisted peer came back: quietly
            log.info("dropped %s: %s", conn.remote, cut)
            return
        entry = cut.entry
        seconds = entry.until - entry.since
        self.out.emit(Blacklisted(conn.remote, entry.host, entry.addr, entry.reason, seconds))
        if cut.addr:  # not redialled while blacklisted (links.dial), again once lifted
            self.links.close(cut.addr, "blacklisted by flood control")

    def _close(self, conn: Incoming, reason: str) -> None:
        conn.closed = reason
        self.out.actions.append(CloseIncoming(conn, reason))

    # -- routing -----------------------------------------------------------------------

    def send(self, data: bytes, now: float, *, needs: str | None = None) -> None:
        """Route a payload of our own (an extension's control message) to the links the
        router picks, only those that announced ``needs``.  Called from within an input."""
        batch = Batch(needs=needs)
        batch.add(data, None, None)
        self.links.route(self.router, batch, now)

    # -- what the user does ------------------------------------------------------------

    def say(
        self, body: str, extra: Mapping[str, Any] | None = None, *, now: float
    ) -> tuple[Message, list[Action]]:
        """Originate a chat message (``extra``: extension keys).  Raises ValueError (empty,
        too long; ``flood.OwnLimit``: faster than peers accept) with a one-line reason."""
        self.now = now
        if not body:
            raise ValueError("cannot send an empty message")
        if not self.addr:
            raise RuntimeError("the node is not running")
        body, nick = codec.well_formed(body), codec.well_formed(self.nick)  # as peers read them
        stamp = int(self.config.wall_clock() * 1000)
        while True:
            message_id = (
                hashed_id(self.addr, body, stamp) if self.config.hashed_ids else random_id()
            )
            if self.seen.add(message_id, now):
                break
            stamp += 1  # the same text twice within a millisecond: keep IDs unique
        message = Message.create(
            id=message_id, addr=self.addr, body=body, nick=nick, timestamp=stamp, extra=extra
        )
        data = codec.encode(message)
        limit = self.config.limits.max_size
        if len(data) > limit:
            raise ValueError(f"message too long: {len(data)} bytes encoded, peers accept {limit}")
        if self.flood is not None:
            self.flood.own(self.addr, now)  # OwnLimit: peers would drop it
        self.stats.sent += 1
        self.out.emit(Delivered(message, own=True, size=len(data)))
        batch = Batch()
        batch.add(data, message, None)
        self._relay(batch, now)
        return message, self.out.take()

    def connect(self, addr: str, now: float) -> tuple[Dialled, list[Action]]:
        """Open an outgoing link at the user's request; raises ``AddressError``."""
        self.now = now
        verdict = self.links.dial(format_hostport(*parse_hostport(addr)), now, by_user=True)
        return verdict, self.out.take()

    def learned(self, addr: str, now: float) -> tuple[bool, list[Action]]:
        """Dial an address heard of other than in a message (discovery), as for ``Addr``."""
        self.now = now
        canonical = dialable(addr)
        if not self.addr or canonical is None:
            return False, []
        started = bool(self.links.dial(canonical, now, by_user=False))
        return started, self.out.take()

    def disconnect(self, addr: str, now: float) -> tuple[bool, list[Action]]:
        """Close an outgoing link; raises ``AddressError``."""
        self.now = now
        done = self.links.disconnect(format_hostport(*parse_hostport(addr)), now)
        return done, self.out.take()

    def unblock(self, key: str) -> list[Entry]:
        """Lift the blacklist entries for an ``Addr`` or host IP; returns them."""
        return self.flood.unblock(key) if self.flood is not None else []

    # -- what an outgoing link's task reports (links.py) ---------------------------------

    def link_connected(
        self, link: Peer, now: float, caps: frozenset[str] = frozenset()
    ) -> list[Action]:
        """The link's TCP connection is up (``caps``: what its peer said it speaks)."""
        self.now = now
        self.links.connected(link, now, caps)
        return self.out.take()

    def data_to_send(self, link: Peer) -> bytes:
        """What the link is to write next: its replay on a new connection, then its queue."""
        return self.links.data_to_send(link)

    def link_failed(
        self, link: Peer, error: str, now: float, *, stalled: bool = False
    ) -> list[Action]:
        """The link could not connect, or its connection broke (``error``: why; ``stalled``:
        its writes stopped making progress)."""
        self.now = now
        self.links.failed(link, error, now, stalled=stalled)
        return self.out.take()

    def link_redial(self, link: Peer, now: float) -> None:
        self.links.redial(link, now)

    def link_ended(self, link: Peer) -> None:
        self.links.ended(link)

    # -- snapshots for front ends ------------------------------------------------------

    def peers(self, now: float) -> list[PeerInfo]:
        return peer_infos(self.table, now)

    def blacklist(self, now: float) -> list[BlacklistEntry] | None:
        """Who flood control cut off; None when flood control is off."""
        return blacklist_entries(self.flood, now) if self.flood is not None else None

    def _replay_age(self) -> float:
        return replay_age(self.seen.span(self.now), self.config.seen.skew)
