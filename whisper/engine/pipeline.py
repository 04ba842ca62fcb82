"""The receiving half of the engine: incoming connections and the relay pipeline.  No trio.

Rules (PROTOCOL.md §5 is normative; ``engine/__init__.py`` draws the pipeline):
- ``received(conn, objects, now)`` takes every object of one received chunk as one batch:
  the timestamp window is computed once, the accepted messages are routed together and
  each link gets one queue entry per batch.  A message whose ``Addr`` is new is dialled
  after what came before it was routed, so the new link is replayed what preceded it and
  sent what follows (as when messages are handled one by one).
- In order, for each object (``flood.py``'s steps when flood control is on): a work token
  (none left: the rest waits in ``conn.pending`` until ``conn.resume_at``) -> interpret ->
  seen? -> the connection's budget -> our own ``Addr``? (a forgery) -> ID hash -> timestamp
  window -> ``Check`` stages -> the connection's budget for its origin -> mark seen ->
  encode once -> event -> ``View`` stages; then per batch ``Keeper`` stages -> the router.
- Two hooks for a router (``overlay_router.py``): ``on_duplicate`` sees each duplicate
  (Plumtree prunes on one), and ``may_dial`` decides whether a new ``Addr`` is dialled
  (None: always, §5.1 step 8).
- Malformed input (a codec ``Violation``) drops that connection and nothing else.  Invalid
  messages (wrong types, hash mismatch, outside the configured window, a forgery, refused
  by a ``Check``) are dropped and cost the connection a penalty point; the first
  ``LOGGED_PER_CONNECTION`` are logged.  One older only than what our seen cache still
  remembers (a flood made it forget early) is dropped and not counted against anyone.
- Flood control cuts a connection by raising ``FloodCut`` from ``count`` or ``penalise``;
  it is caught right there, at the call, and becomes ``CloseIncoming``, a ``Blacklisted``
  event and ``CloseLink`` for every link to the blacklisted host (unless it is shared).
- What the unfinished messages of all connections hold is bounded by the receive budget
  (``incoming.over_budget``): past it the connection holding the most is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..addr import dialable
from ..backlog import HISTORY_KEY
from ..codec import Violation, encode_object
from ..events import Blacklisted, Delivered, Dropped
from ..flood import FloodCut
from ..freshness import Window
from ..ids import HASH_PREFIX, IdCheck, check_id
from ..message import SECONDS_CUTOFF, InvalidMessage, Message, NotChat
from .actions import Action, CloseIncoming
from .incoming import LOGGED_PER_CONNECTION, Incoming, over_budget
from .stages import Batch

if TYPE_CHECKING:
    from ..budget import Budget
    from ..config import Config
    from ..flood import FloodControl
    from ..peers import PeerTable
    from ..seen import SeenCache
    from .actions import Outbox
    from .links import Links
    from .snapshots import Stats
    from .stages import Check, Control, Keeper, Router, View
    from .twoway import FindOut

log = logging.getLogger("whisper.engine")
FORGED = "it has our own Addr, but we never sent it"
INVALID = "invalid messages"  # what flood control's penalty points are for (its ``kind``)
_tuple = tuple.__new__  # Delivered(...) without its Python-level __new__: once per message


class Pipeline:
    """The part of ``Engine`` (``relay.py``) that receives; its state is the engine's."""

    config: Config
    addr: str
    now: float
    seen: SeenCache
    table: PeerTable
    flood: FloodControl | None
    stats: Stats
    out: Outbox
    links: Links
    receive_budget: Budget[Incoming]
    greeting: bytes
    checks: list[Check]
    controls: list[Control]
    keepers: list[Keeper]
    views: list[View]
    router: Router
    find_out: FindOut
    on_duplicate: Callable[[Incoming, Message, float], None] | None
    may_dial: Callable[[str, Incoming | None], bool] | None

    # -- incoming connections ------------------------------------------------------------

    def open_incoming(
        self, remote: str, now: float, *, reverse: bool = False
    ) -> tuple[Incoming | str, list[Action]]:
        """A connection from ``remote`` (IP:PORT) was accepted (``reverse``: what a two-way
        link's peer writes back, twoway.py): its handle, or why to close it.  It may take
        the slot of one that gives way (PROTOCOL.md §5.4): that one is closed
        (``CloseIncoming`` or ``CloseLink`` in the actions)."""
        self.now = now
        if not reverse:
            self.find_out.incoming()
        flood = None
        if self.flood is not None:
            flood = self.flood.open(remote, now, self.addr)
            if flood is None:
                log.info("refused %s: blacklisted by flood control", remote)
                return "blacklisted by flood control", []
        conn = Incoming(remote, self.config.limits.decoder(), flood)
        conn.greeting = self.greeting
        admission = self.table.admit(remote, now, lambda why: self._close(conn, why))
        if not admission:
            log.warning("refused %s: %s", remote, admission.refused)
            conn.decoder.close()
            return admission.refused, []
        if admission.replaces is not None:
            self.links.give_way(admission.replaces, remote, now)
        log.debug("accepted %s", remote)
        return conn, self.out.take()

    def closed_incoming(self, conn: Incoming) -> None:
        conn.closed = conn.closed or "ended"
        self.table.closed(conn.remote)
        self.receive_budget.release(conn)
        conn.decoder.close()

    def receive_data(self, conn: Incoming, data: bytes, now: float) -> list[Action]:
        """Bytes read from ``conn`` (``b""``: it reached EOF)."""
        if conn.closed is not None:
            return []
        items = conn.decoder.feed(data) if data else conn.decoder.feed_eof()
        actions = self.receive_items(conn, items, now) if items else []
        if conn.closed is not None or not self._hold(conn):
            return actions
        return actions + self.out.take()

    def decode(
        self, conn: Incoming, data: bytes, now: float
    ) -> tuple[list[dict[str, Any] | Violation], list[Action]]:
        """``receive_data``'s first half: the objects of the bytes read from ``conn``, for
        ``receive_items`` (a shell may verify their signatures in between, off the event
        loop: ``SignatureCheck.prepare``), and what the receive budget makes us do now."""
        self.now = now
        if conn.closed is not None:
            return [], []
        items = conn.decoder.feed(data) if data else conn.decoder.feed_eof()
        if not self._hold(conn):
            return items, []
        return items, self.out.take()

    def receive_items(
        self, conn: Incoming, items: list[dict[str, Any] | Violation], now: float
    ) -> list[Action]:
        """``receive_data``'s second half: the objects ``decode`` gave, through the pipeline."""
        if conn.closed is not None:
            return []
        if conn.pending:  # paced: what is decoded waits behind what already waits
            conn.pending += items
            return []
        actions = self.received(conn, items, now)
        if not conn.pending:
            conn.prechecked.clear()
        return actions

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
        self, conn: Incoming, items: Sequence[dict[str, Any] | Violation], now: float
    ) -> list[Action]:
        """The objects of one chunk read from ``conn``, decoded: the pipeline, as one batch."""
        self.now = now
        if conn.closed is not None:
            return []
        # Once per message below: what it needs is in locals (an attribute load each costs).
        seen, outgoing, checks, views = self.seen, self.table.outgoing, self.checks, self.views
        cfg = self.config.seen
        window = Window(self.config.wall_clock(), seen.span(now), cfg.skew, seen.ttl)
        low, high, old = window.low, window.high, window.history
        events, from_wire, flood, stats = self.out.events, Message.from_wire, conn.flood, self.stats
        batch = Batch(conn)
        add_data, add_message, add_author = batch.appenders()
        counted = dropped = 0
        for i, obj in enumerate(items):
            if type(obj) is Violation:
                self._violation(conn, obj.reason)
                break
            if flood is not None and (delay := flood.pace(now)):  # out of work tokens:
                conn.pending, conn.resume_at = list(items[i:]), now + delay  # read no more
                stats.paced += 1
                break
            counted += 1
            try:
                message = from_wire(obj)
            except NotChat:
                if flood is not None and not self._count(conn, now, None):
                    continue
                if not any(c.control(obj, conn, now) for c in self.controls):
                    stats.ignored += 1
                continue
            except InvalidMessage as exc:
                if flood is not None and not self._count(conn, now, None):
                    continue  # over the budget: a point already
                if self._invalid(conn, str(exc), now):
                    break
                continue
            mid = message.id
            if mid in seen:
                dropped += 1
                if self.on_duplicate is not None:
                    self.on_duplicate(conn, message, now)
                continue
            author = message.addr  # usually a link's key: one dict lookup; else "1.2.3.4:05" is
            link = outgoing.get(author)
            canonical = author if link is not None else dialable(author)  # 1.2.3.4:5, once
            if canonical is not None:
                author = canonical
                if link is None:
                    link = outgoing.get(canonical)
            if flood is not None and not self._count(conn, now, author):
                if conn.closed is not None:
                    break
                continue
            ts = message.timestamp  # in seconds (Go) or milliseconds: see Message.timestamp_ms
            ms = None if not ts else ts * 1000 if ts < SECONDS_CUTOFF else ts
            reason: str | None = None
            if canonical == self.addr:  # ours, and not in the seen cache: we never sent it
                stats.forged += 1
                if self._invalid(
                    conn, "it has our own Addr, but we never sent it", now, "forgeries"
                ):
                    break
                continue
            if mid.startswith(HASH_PREFIX) and check_id(message) is IdCheck.MISMATCH:
                reason = f"ID {mid[:80]!r} does not match its payload"
            elif ms is not None and not low < ms < high and (stale := window.check(ms)):
                if not stale.penalise:  # our own load shrank the window: not its fault
                    stats.forgotten += 1
                    continue
                reason = stale.reason
            if reason is None and checks:
                reason = next(filter(None, (c.check(message, conn, now) for c in checks)), None)
            if reason is not None:
                if self._invalid(conn, reason, now, claims=author):
                    break
                continue
            if flood is not None and not flood.admit(author, now):
                stats.over_limit += 1
                continue
            seen.add(mid, now)
            data = encode_object(obj)  # message.fields is obj: relayed as received
            history = obj.get(HISTORY_KEY) is True or (ms is not None and ms < old)
            event: Delivered | None = _tuple(
                Delivered, (message, False, history, None, len(data), None, data, 0)
            )
            for view in views:
                event = view.view(event)  # type: ignore[arg-type]
                if event is None:
                    break
            else:
                events.append(event)
            add_data(data)
            add_message(message)
            add_author(author)
            if flood is not None:  # a light message may use a link's light share
                batch.lights.append(flood.light(now))
            if link is not None:
                link.produced = now  # its Addr spoke (connmgr.py); see PeerTable.delivered
            elif canonical is not None and (
                self.may_dial is None or self.may_dial(canonical, conn)
            ):  # a new Addr: what came before goes out first
                self._relay(batch, now)
                batch = Batch(conn)
                add_data, add_message, add_author = batch.appenders()
                self.links.dial(canonical, now, by_user=False, spoke=True)
        stats.received += counted
        stats.duplicates += dropped
        self._relay(batch, now)
        return self.out.take()

    def resume(self, conn: Incoming, now: float) -> list[Action]:
        """A paced connection's time has come (``conn.resume_at``): handle what it held."""
        items, conn.pending, conn.resume_at = conn.pending, [], None
        actions = self.received(conn, items, now) if items else []
        if not conn.pending:
            conn.prechecked.clear()
        return actions

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

    def _invalid(
        self,
        conn: Incoming,
        reason: str,
        now: float,
        kind: str = "invalid messages",
        claims: str = "",
    ) -> bool:
        """Count an invalid message (``claims``: the Addr it claimed); True if that cut the
        connection."""
        self.stats.invalid += 1
        conn.invalid += 1
        if conn.invalid <= LOGGED_PER_CONNECTION:
            log.warning("ignored a message from %s: %s", conn.remote, reason)
            if conn.invalid == LOGGED_PER_CONNECTION:
                log.warning("not logging further invalid messages from %s", conn.remote)
        if conn.flood is None:
            return False
        try:
            conn.flood.penalise(now, kind, claims or None)
        except FloodCut as cut:
            self._cut(conn, cut, now)
            return True
        return False

    def _count(self, conn: Incoming, now: float, claims: str | None) -> bool:
        """Flood control's budget for an object that is not a duplicate: False to drop it
        (the connection may have been cut for it)."""
        try:
            if conn.flood.count(now, claims):  # type: ignore[union-attr]
                return True
        except FloodCut as cut:
            self._cut(conn, cut, now)
        self.stats.over_limit += 1
        return False

    def _cut(self, conn: Incoming, cut: FloodCut, now: float) -> None:
        self._close(conn, str(cut))
        if cut.refused:  # a blacklisted host's flooder came back (a shared host): quietly
            log.info("dropped %s: %s", conn.remote, cut)
            return
        entry = cut.entry
        self.out.emit(Blacklisted(conn.remote, entry.host, entry.until - entry.since, str(cut)))
        assert self.flood is not None
        for addr in [a for a in self.table.outgoing if self.flood.blocked(a, now)]:
            self.links.close(addr, "blacklisted by flood control")  # redialled once lifted

    def _close(self, conn: Incoming, reason: str) -> None:
        conn.closed = reason
        self.out.actions.append(CloseIncoming(conn, reason))
