"""The whispernet node: accepts connections, relays every new message, dials new peers.

Rules (PROTOCOL.md §5 is normative):

- One trio nursery holds the TCP acceptor, one task per incoming connection and one task per
  outgoing link (``link.py``).
- Each received object goes through one pipeline, in this order (``flood.py`` when flood
  control is on): a work token (none left: stop reading the connection until one comes) ->
  interpret (``message.py``) -> seen? -> the connection's budget (over it: dropped) -> our
  own ``Addr``? -> ID hash check (``ids.py``) -> freshness window (``freshness.py``) -> the
  connection's budget for its origin -> mark seen -> deliver to front ends -> encode once
  -> enqueue on every outgoing link except the one to the message's ``Addr`` -> dial
  ``Addr`` if it is new.  A payload without Body costs a budget token too.
- Malformed input (a codec ``Violation``) drops that connection and nothing else.  Invalid
  messages (wrong types, hash mismatch, outside the configured window) are dropped and
  counted against the connection; the first ``LOGGED_PER_CONNECTION`` of them are logged.
  One older only than what our seen cache still remembers (a flood made it forget early)
  is dropped and not counted: our load shrank the window, not the sender.
- Memory is budgeted across connections (PROTOCOL.md §5.3): the unfinished messages of all
  incoming connections together (``receive_budget``, charged at what the decoder holds, not
  at wire bytes; over it, the connection holding the most is dropped) and all send queues
  together (``send_budget``: each message is encoded once and shared by every queue; over
  it, the longest queues lose their newest messages).
- Our own messages are marked seen before they are sent: peers that echo them (the Go
  reference does) are ignored.  A message with our own ``Addr`` that is not in the seen
  cache is one we never sent: a forgery, dropped and counted against its connection.
- With flood control on, a link is sent at most what a receiver's new connection accepts
  (``flood.LinkBudget``): past it a message is dropped for that link only, so a flood that
  entered on several connections never gets us cut off downstream; a share of it is kept
  for light messages (ours, and those of connections bringing what one person types).
- Every new message, ours or accepted, goes into the backlog (``backlog.py``), which each
  connection of an outgoing link is replayed first (extension 11); file messages go into
  the file store (``files.py``, extension 10), and the event says which are history or files.
- Connection slots (PROTOCOL.md §5.4; policy in ``peers.py`` and ``connmgr.py``): a new
  connection or link beyond a cap may take the slot of one that gives way, which the node
  then closes.  Each accepted message tells the table that its connection, and the link to
  its ``Addr``, produced something.
- Front ends get events through ``subscribe()``: a ``Subscription`` each, bounded in events
  and bytes; when one is full its events are dropped (and the front end told how many)
  rather than stalling the node.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from . import codec
from .addr import dialable, format_hostport, outward_ipv4, parse_hostport
from .backlog import DEFAULT_BACKLOG, Backlog, is_history, replay_age
from .backlog import DEFAULT_MAX_BYTES as BACKLOG_BYTES
from .budget import Budget
from .connmgr import DEFAULT_ACTIVE_FOR, DEFAULT_GRACE, idle_for
from .discovery import run_discovery
from .discovery_policy import ANNOUNCE_INTERVAL, DISCOVERY_PORT
from .events import Delivered, Event, Notice
from .files import DEFAULT_MAX_BYTES as FILE_STORE_BYTES
from .files import DEFAULT_MAX_FILES, FileStore, StoredFile, autosave
from .flood import Connection as FloodConnection
from .flood import FloodConfig, FloodControl, FloodCut
from .freshness import DEFAULT_SKEW, check_fresh
from .ids import IdCheck, check_id, hashed_id, random_id
from .link import CONNECT_TIMEOUT, SEND_STALL_TIMEOUT, OutgoingLink
from .message import InvalidMessage, Message, NotChat
from .peers import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_MAX_FAILURES,
    DEFAULT_MAX_INCOMING,
    DEFAULT_MAX_OUTGOING,
    DEFAULT_MAX_PER_HOST,
    Peer,
    PeerTable,
)
from .seen import DEFAULT_MAX_ENTRIES, DEFAULT_TTL, SeenCache
from .sendqueue import DEFAULT_BUDGET as SEND_BUDGET
from .sendqueue import DEFAULT_MAX_BYTES, DEFAULT_MAX_ITEMS, SendBudget, SendQueue, Shared
from .subscription import DEFAULT_MAX_EVENTS, Subscription

RECEIVE_BYTES = 64 * 1024
#: What the unfinished messages of all incoming connections may hold together (bytes).
RECEIVE_BUDGET = 128 * 1024 * 1024
MAX_INCOMING = DEFAULT_MAX_INCOMING
MAX_INCOMING_PER_HOST = DEFAULT_MAX_PER_HOST
LOGGED_PER_CONNECTION = 10
SUBSCRIBER_BUFFER = DEFAULT_MAX_EVENTS
SUBSCRIBER_BYTES = 16 * 1024 * 1024

log = logging.getLogger("whisper.node")


@dataclass
class Config:
    host: str = "127.0.0.1"  # address to bind; "0.0.0.0" binds all and advertises outward IP
    port: int = 55555
    nick: str = ""
    peers: list[str] = field(default_factory=list)
    advertise: str | None = None  # IP to put in Addr (default: host, or outward IP)
    hashed_ids: bool = True
    max_message_size: int = codec.DEFAULT_MAX_SIZE
    max_depth: int = codec.DEFAULT_MAX_DEPTH
    max_values: int = codec.DEFAULT_MAX_VALUES
    seen_ttl: float = DEFAULT_TTL
    seen_max_entries: int = DEFAULT_MAX_ENTRIES
    skew: float = DEFAULT_SKEW
    queue_bytes: int = DEFAULT_MAX_BYTES
    queue_items: int = DEFAULT_MAX_ITEMS
    send_budget: int = SEND_BUDGET  # all send queues together (sendqueue.py)
    receive_budget: int = RECEIVE_BUDGET  # all unfinished incoming messages together
    max_incoming: int = MAX_INCOMING
    max_incoming_per_host: int = MAX_INCOMING_PER_HOST  # per connmgr.network; loopback exempt
    max_outgoing: int = DEFAULT_MAX_OUTGOING
    slot_grace: float = DEFAULT_GRACE  # a new connection cannot be made to give way (connmgr.py)
    slot_active_for: float = DEFAULT_ACTIVE_FOR  # ... nor one that produced within this
    max_failures: int = DEFAULT_MAX_FAILURES
    backoff_base: float = DEFAULT_BACKOFF_BASE
    connect_timeout: float = CONNECT_TIMEOUT
    stall_timeout: float = SEND_STALL_TIMEOUT
    discovery_port: int | None = DISCOVERY_PORT  # UDP discovery (discovery.py); None: off
    discovery_interval: float = ANNOUNCE_INTERVAL
    backlog: int = DEFAULT_BACKLOG  # messages replayed on each new connection (backlog.py); 0: off
    backlog_bytes: int = BACKLOG_BYTES
    max_files: int = DEFAULT_MAX_FILES  # received files kept in memory (files.py)
    max_file_bytes: int = FILE_STORE_BYTES
    downloads: Path | None = None  # save received files here as they arrive; None: never
    flood: FloodConfig | None = None  # flood control (flood.py); None: off (the CLI turns it on)
    wall_clock: Callable[[], float] = time.time


@dataclass
class Stats:
    received: int = 0  # objects decoded
    delivered: int = 0  # new chat messages accepted from the network
    duplicates: int = 0
    ignored: int = 0  # payloads without Body
    invalid: int = 0  # wrong types, hash mismatch, outside the window, forged
    forged: int = 0  # ... of them: our own Addr, but we never sent it
    forgotten: int = 0  # older than our seen cache remembers, inside the configured window
    over_limit: int = 0  # objects dropped by flood control (connection or origin budget)
    paced: int = 0  # times a connection was not read for a while (out of work tokens)
    held_back: int = 0  # messages not sent to a link: over what a receiver accepts (flood.py)
    violations: int = 0  # connections dropped for malformed input
    over_budget: int = 0  # connections dropped: the receive budget was spent
    sent: int = 0  # messages we originated


@dataclass(eq=False)  # hashed by identity: a key of the receive budget
class _Incoming:
    remote: str
    invalid: int = 0
    flood: FloodConnection | None = None
    reading: trio.CancelScope = field(default_factory=trio.CancelScope)  # dropped: cancelled


class Node:
    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self.nick = self.config.nick
        self.addr = ""  # our advertised IP:PORT, known once run() has bound
        self.stats = Stats()
        self.seen = SeenCache(self.config.seen_ttl, self.config.seen_max_entries)
        self.table = PeerTable(
            max_outgoing=self.config.max_outgoing,
            max_failures=self.config.max_failures,
            backoff_base=self.config.backoff_base,
            max_incoming=self.config.max_incoming,
            max_per_host=self.config.max_incoming_per_host,
            grace=self.config.slot_grace,
            active_for=self.config.slot_active_for,
        )
        self.links: dict[str, OutgoingLink] = {}
        self.receive_budget: Budget[_Incoming] = Budget(self.config.receive_budget)
        self.send_budget = SendBudget(self.config.send_budget)
        self.flood = FloodControl(self.config.flood) if self.config.flood else None
        self.backlog = Backlog(
            self.config.backlog,
            self.config.backlog_bytes,
            clock=self.config.wall_clock,
            max_age=self._replay_age,
            max_size=self.config.max_message_size,
        )
        self.files = FileStore(
            self.config.max_files, self.config.max_file_bytes, clock=self.config.wall_clock
        )
        self._subscribers: list[Subscription] = []
        self._nursery: trio.Nursery | None = None

    # -- lifetime --------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and relay until cancelled.  ``task_status.started`` gets our IP:PORT."""
        cfg = self.config
        # Bind before the nursery so that "address in use" surfaces as a plain OSError.
        listeners = await trio.open_tcp_listeners(cfg.port, host=cfg.host)
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self._serve_incoming, listeners)
            port = listeners[0].socket.getsockname()[1]
            advertised = cfg.advertise or cfg.host
            if advertised in ("", "0.0.0.0", "::"):
                advertised = outward_ipv4()
            self.addr = format_hostport(advertised, port)
            self.table.self_addr = self.addr
            if self.flood is not None:
                self.flood.here = self.addr  # a shared host: never refused, never blocked
            self._nursery = nursery
            log.debug("listening on %s", self.addr)
            for peer in cfg.peers:
                self.connect(peer)
            if cfg.discovery_port is not None:
                await nursery.start(run_discovery, self)
            task_status.started(self.addr)

    # -- what front ends call ----------------------------------------------------------

    @contextlib.contextmanager
    def subscribe(
        self, buffer: int = SUBSCRIBER_BUFFER, max_bytes: int = SUBSCRIBER_BYTES
    ) -> Iterator[Subscription]:
        """Events for one front end, bounded (``subscription.py``): the node never waits."""
        subscription = Subscription(buffer, max_bytes)
        self._subscribers.append(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.remove(subscription)
            subscription.close()

    def say(self, body: str, extra: Mapping[str, Any] | None = None) -> Message:
        """Originate a chat message (``extra``: extension keys) and send it to every peer."""
        if not body:
            raise ValueError("cannot send an empty message")
        if not self.addr:
            raise RuntimeError("the node is not running")
        body, nick = codec.well_formed(body), codec.well_formed(self.nick)  # as peers read them
        stamp = int(self.config.wall_clock() * 1000)
        while True:
            if self.config.hashed_ids:
                message_id = hashed_id(self.addr, body, stamp)
            else:
                message_id = random_id()
            if self.seen.add(message_id, trio.current_time()):
                break
            stamp += 1  # the same text twice within a millisecond: keep IDs unique
        message = Message.create(
            id=message_id, addr=self.addr, body=body, nick=nick, timestamp=stamp, extra=extra
        )
        data = codec.encode(message)
        if len(data) > self.config.max_message_size:
            raise ValueError(
                f"message too long: {len(data)} bytes encoded, peers accept "
                f"{self.config.max_message_size}"
            )
        if self.flood is not None:
            self.flood.own(trio.current_time())  # OwnLimit: peers would drop it
        self.stats.sent += 1
        self.backlog.add(message, len(data))
        self._publish(Delivered(message, own=True), len(data))
        self._forward(data, None, trio.current_time(), light=True)
        return message

    def connect(self, addr: str) -> bool:
        """Open an outgoing link at the user's request.  False if we have one already."""
        host, port = parse_hostport(addr)
        return self._dial(format_hostport(host, port), by_user=True)

    def disconnect(self, addr: str) -> bool:
        """Close an outgoing link; it is not redialled automatically for a while."""
        addr = format_hostport(*parse_hostport(addr))
        link = self.links.pop(addr, None)
        if link is None:
            return False
        link.close()
        self.table.remove(addr)
        self.table.forget(addr, trio.current_time())
        self._notice(f"disconnected from {addr}")
        return True

    def learned(self, addr: str) -> bool:
        """Dial an address heard of other than in a message (discovery), as for ``Addr``."""
        canonical = dialable(addr)
        if self._nursery is None or canonical is None or canonical in self.links:
            return False
        return self._dial(canonical, by_user=False)

    def set_nick(self, nick: str) -> None:
        self.nick = nick

    # -- receiving ---------------------------------------------------------------------

    async def _serve_incoming(self, stream: trio.SocketStream) -> None:
        try:
            remote = format_hostport(*stream.socket.getpeername()[:2])
        except OSError:
            await stream.aclose()
            return
        async with stream:
            conn = _Incoming(remote)
            if self.flood is not None:
                conn.flood = self.flood.open(remote, trio.current_time(), self.addr)
                if conn.flood is None:
                    log.info("refused %s: blacklisted by flood control", remote)
                    return
            with trio.CancelScope() as scope:
                now = trio.current_time()
                admission = self.table.admit(remote, now, scope.cancel)
                if not admission:
                    log.warning("refused %s: %s", remote, admission.refused)
                    return
                if admission.replaces is not None:
                    self._give_way(admission.replaces, remote, now)
                log.debug("accepted %s", remote)
                try:
                    await self._read(stream, conn)
                finally:
                    self.table.closed(remote)

    async def _read(self, stream: trio.SocketStream, conn: _Incoming) -> None:
        cfg = self.config
        decoder = codec.Decoder(
            max_size=cfg.max_message_size, max_depth=cfg.max_depth, max_values=cfg.max_values
        )
        try:
            with conn.reading:
                await self._read_into(stream, decoder, conn)
        except FloodCut as cut:
            self._flood_cut(conn, cut)
        finally:
            decoder.close()
            self.receive_budget.release(conn)

    async def _read_into(
        self, stream: trio.SocketStream, decoder: codec.Decoder, conn: _Incoming
    ) -> None:
        while True:
            try:
                data = await stream.receive_some(RECEIVE_BYTES)
            except trio.BrokenResourceError as exc:
                log.debug("incoming %s broke: %s", conn.remote, exc.__cause__ or exc)
                return
            items = decoder.feed(data) if data else decoder.feed_eof()
            now = trio.current_time()
            flood = conn.flood
            for item in items:
                if type(item) is codec.Violation:
                    self.stats.violations += 1
                    self._notice(f"dropped {conn.remote}: {item.reason}", warning=True)
                    return
                if flood is not None and (delay := flood.pace(now)):
                    now = await self._paced(flood, delay)
                self._receive(item, conn, now)
            if not data or not self._hold(conn, decoder.held):
                return

    async def _paced(self, flood: FloodConnection, delay: float) -> float:
        """Stop reading until the connection has a work token again; the time then."""
        self.stats.paced += 1
        while delay:
            await trio.sleep(delay)
            delay = flood.pace(trio.current_time())
        return trio.current_time()

    def _hold(self, conn: _Incoming, held: int) -> bool:
        """Charge what ``conn``'s unfinished message holds; while the receive budget is
        spent, drop the connection holding the most.  False if that was ``conn``."""
        budget = self.receive_budget
        budget.hold(conn, held)
        while budget.over():
            victim = budget.biggest()
            assert victim is not None
            self.stats.over_budget += 1
            self._notice(
                f"dropped {victim.remote}: the receive budget ({_mib(budget.limit)} for all "
                f"connections) is spent, and its unfinished message holds the most "
                f"({_mib(budget.held(victim))})",
                warning=True,
            )
            budget.release(victim)
            if victim is conn:
                return False
            victim.reading.cancel()
        return True

    def _receive(self, obj: dict, conn: _Incoming, now: float) -> None:
        self.stats.received += 1
        flood = conn.flood
        try:
            message = Message.from_wire(obj)
        except NotChat:
            self.stats.ignored += 1
            if flood is not None and not flood.count(now):  # FloodCut: closed
                self.stats.over_limit += 1
            return
        except InvalidMessage as exc:
            if flood is not None and not flood.count(now):  # over the budget: a point already
                self.stats.over_limit += 1
            else:
                self._invalid(conn, str(exc))
            return
        if message.id in self.seen:
            self.stats.duplicates += 1
            return
        author = message.addr  # usually a link's key: one dict lookup; else "1.2.3.4:05" is
        canonical = author if author in self.links else dialable(author)  # 1.2.3.4:5, once
        if canonical is not None:
            author = canonical
        if flood is not None and not flood.count(now, author):  # FloodCut: closed
            self.stats.over_limit += 1
            return
        if canonical == self.addr:  # ours, and not in the seen cache: we never sent it
            self.stats.forged += 1
            self._invalid(conn, "it has our own Addr, but we never sent it", "forgeries")
            return
        if check_id(message) is IdCheck.MISMATCH:
            why = f"ID {message.id[:80]!r} does not match its payload"
            self._invalid(conn, why, claims=author)
            return
        stale = check_fresh(
            message.timestamp_ms,
            now=self.config.wall_clock(),
            memory=self.seen.span(now),
            skew=self.config.skew,
            ttl=self.seen.ttl,
        )
        if stale:
            if stale.penalise:
                self._invalid(conn, stale.reason, claims=author)
            else:  # our own load shrank the window: not the sender's fault
                self.stats.forgotten += 1
            return
        if flood is not None and not flood.admit(author, now):
            self.stats.over_limit += 1
            return
        self.seen.add(message.id, now)
        self.stats.delivered += 1
        data = codec.encode_object(obj)  # message.fields is obj: relayed as received
        self._publish(self._accepted(message, len(data)), len(data))
        self.table.delivered(conn.remote, canonical, now)  # both slots produced (connmgr.py)
        self._forward(data, author, now, flood is None or flood.light(now))
        if canonical is not None and canonical not in self.links:
            self._dial(canonical, by_user=False, spoke=True)

    def _accepted(self, message: Message, size: int) -> Delivered:
        """Backlog (extension 11) and files (extension 10) take note; the event to show."""
        self.backlog.add(message, size)
        file = self.files.receive(message)
        downloads = self.config.downloads
        if type(file) is StoredFile and downloads and self._nursery is not None:
            self._nursery.start_soon(autosave, self.files, file, downloads, self._notice)
        history = is_history(message, self.config.wall_clock())
        return Delivered(message, history=history, file=file)

    def _replay_age(self) -> float:
        return replay_age(self.seen.span(trio.current_time()), self.config.skew)

    def _invalid(
        self, conn: _Incoming, reason: str, kind: str = "invalid messages", claims: str = ""
    ) -> None:
        self.stats.invalid += 1
        conn.invalid += 1
        if conn.invalid <= LOGGED_PER_CONNECTION:
            log.warning("ignored a message from %s: %s", conn.remote, reason)
            if conn.invalid == LOGGED_PER_CONNECTION:
                log.warning("not logging further invalid messages from %s", conn.remote)
        if conn.flood is not None:
            conn.flood.penalise(trio.current_time(), kind, claims or None)  # FloodCut: cut

    def _flood_cut(self, conn: _Incoming, cut: FloodCut) -> None:
        if cut.refused:  # a blacklisted host's flooder came back (a shared host): quietly
            log.info("dropped %s: %s", conn.remote, cut)
            return
        self._notice(f"dropped {conn.remote}: {cut}", warning=True)
        assert self.flood is not None
        now = trio.current_time()
        for addr in [a for a in self.links if self.flood.blocked(a, now)]:  # at that host,
            link = self.links.pop(addr)  # unless it is shared; redialled once lifted
            link.close()
            self.table.remove(addr)

    # -- sending -----------------------------------------------------------------------

    def _forward(self, data: bytes, except_addr: str | None, now: float, light: bool) -> None:
        """Enqueue on every link but ``except_addr``'s; ``light``: ours, or from a connection
        that brings no more than a person types (a share of each link is kept for those)."""
        shared = Shared(data)  # one message, whichever queues hold it (the send budget)
        for addr, link in self.links.items():
            if addr == except_addr:
                continue
            budget = link.budget  # flood control: never more than a receiver's budget
            if budget is None or budget.take(now, light):
                link.enqueue(shared, now)
            else:
                self.stats.held_back += 1

    def _dial(self, addr: str, *, by_user: bool, spoke: bool = False) -> bool:
        if self._nursery is None:
            raise RuntimeError("the node is not running")
        now = trio.current_time()
        if self.flood is not None and self.flood.blocked(addr, now):
            return False
        admission = self.table.should_dial(addr, now, by_user=by_user, spoke=spoke)
        if not admission:
            return False
        if admission.replaces is not None:
            self._give_way(admission.replaces, addr, now)
        link = OutgoingLink(
            addr,
            self.table,
            self._notice,
            SendQueue(self.config.queue_bytes, self.config.queue_items, budget=self.send_budget),
            connect_timeout=self.config.connect_timeout,
            stall_timeout=self.config.stall_timeout,
        )
        link.replay = self.backlog.for_link(addr)
        if self.flood is not None:
            link.budget = self.flood.link_budget(trio.current_time())
        self.links[addr] = link
        self._nursery.start_soon(self._run_link, link)
        return True

    def _give_way(self, peer: Peer, newcomer: str, now: float) -> None:
        """Close the slot the table gave to ``newcomer`` (it has dropped ``peer`` already)."""
        if peer.outgoing:
            link = self.links.pop(peer.addr, None)
            if link is not None:
                link.close()
        elif peer.close is not None:
            peer.close()
        way = "link to" if peer.outgoing else "connection from"
        log.info("closed the %s %s (%s) for %s", way, peer.addr, idle_for(peer, now), newcomer)

    async def _run_link(self, link: OutgoingLink) -> None:
        try:
            await link.run()
        finally:
            if self.links.get(link.addr) is link:
                del self.links[link.addr]
                self.table.remove(link.addr)

    # -- front-end plumbing ------------------------------------------------------------

    def _publish(self, event: Event, size: int) -> None:
        """Offer ``event`` (``size``: its weight in bytes) to every front end."""
        for subscription in self._subscribers:
            if not subscription.offer(event, size):
                log.debug("a front end is not keeping up: dropped %r", event)

    def _notice(self, text: str, warning: bool = False) -> None:
        log.log(logging.WARNING if warning else logging.INFO, "%s", text)
        self._publish(Notice(text, warning), len(text))


def _mib(nbytes: int) -> str:
    return f"{nbytes / (1024 * 1024):.1f} MiB"
