"""The relay engine: the whole whispernet node as one synchronous object.  No trio.

Rules (PROTOCOL.md §5 is normative; ``engine/__init__.py`` draws the pipeline):
- The engine is fed what happened, with the time (``now``: any monotonic clock in seconds;
  the wall clock is ``Config.wall_clock``), and returns the ``actions.py`` to carry out.
  It never blocks, sleeps, reads a clock of its own or touches a socket.
- ``Engine`` holds the state (seen cache, peer table, flood control, backlog, files) and the
  extension points (``stages.py``); receiving is ``pipeline.py``, outgoing links
  ``links.py``.  This module is what the user and the links' tasks do: say, connect,
  disconnect, a link up, failed, ended; and the snapshots front ends ask for.
- Our own messages are marked seen before they are sent: peers that echo them are ignored;
  flood control keeps us under what peers accept from one sender (``OwnLimit``).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping
from typing import Any

from .. import codec
from ..addr import dialable, format_hostport, parse_hostport
from ..backlog import Backlog, replay_age
from ..budget import Budget
from ..config import Config
from ..events import Delivered
from ..files import FileStore
from ..flood import Entry, FloodControl
from ..identity.stages import IdentityLayer, Shown
from ..ids import hashed_id, random_id
from ..message import Message
from ..peers import Dialled, Peer, PeerTable, State
from ..seen import SeenCache
from .actions import Action, Outbox
from .hello import SPEAKS, Hello, banner
from .incoming import Incoming
from .links import Links
from .overlay_router import OverlayRouter
from .overlay_router import install as install_overlay
from .pipeline import Pipeline
from .presence import Presence, UserInfo
from .snapshots import BlacklistEntry, PeerInfo, Stats, blacklist_entries, peer_infos
from .stages import (
    BacklogKeeper,
    Batch,
    Check,
    Control,
    FilesView,
    FloodRouter,
    Keeper,
    Linker,
    Router,
    Signer,
    View,
    Watcher,
)
from .twoway import FindOut

log = logging.getLogger("whisper.engine")


class Engine(Pipeline):
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
        self.links = Links(
            self.table, self.backlog, self.flood, self.out, cfg.connections, self.stats
        )
        # -- extension points (stages.py) --
        self.checks: list[Check] = []
        self.controls: list[Control] = []
        self.keepers: list[Keeper] = [BacklogKeeper(self.backlog)]
        self.views: list[View] = [
            FilesView(self.files, self.out, autosave=cfg.files.downloads is not None)
        ]
        self.router: Router = FloodRouter()
        #: Each message we say passes through these (``Signer.sign``): extension 13 signs.
        self.signers: list[Signer] = []
        self.identity: IdentityLayer | None = None
        if cfg.identity is not None:
            self.identity = IdentityLayer(self, cfg.identity.identity, cfg.identity.max_pins)
            self.identity.install()
        self.hello = Hello(self)
        self.find_out = FindOut(self)  # two-way links (twoway.py)
        self.presence = Presence(self)
        self.controls += [self.hello, self.presence]
        self.linkers: list[Linker] = [self.hello, self.presence]
        self.watchers: list[Watcher] = []
        self.on_duplicate: Callable[[Incoming, Message, float], None] | None = None
        self.may_dial: Callable[[str, Incoming | None], bool] | None = None  # §5.1 step 8
        self.refuse_speaker: Callable[[Incoming], str | None] | None = None  # hello.py
        self.speaks: tuple[str, ...] = SPEAKS
        self.overlay: OverlayRouter | None = None
        if cfg.routing is not None:  # extension 14 (overlay_router.py)
            self.overlay = install_overlay(self, cfg.routing)
        self.greeting = banner(self.speaks)  # first on every accepted connection (hello.py)
        self.now = 0.0  # the time of the last input (or of the one being handled)

    # -- lifetime ----------------------------------------------------------------------

    def start(self, addr: str, now: float) -> list[Action]:
        """The shell listens at ``addr`` (our advertised IP:PORT): dial the configured peers."""
        self.now = now
        self.addr = self.table.self_addr = addr
        if self.flood is not None:
            self.flood.here = addr  # a shared host: never refused, never blocked
        for watcher in self.watchers:
            watcher.started(now)
        for peer in self.config.peers:
            self.links.dial(format_hostport(*parse_hostport(peer)), now, by_user=True)
        return self.out.take()

    def discover(self, now: float) -> tuple[bool, list[Action]]:
        """``/discover``: a peer exchange (an overlay shuffle) now; False if there is none
        to do (flood routing, or no neighbour yet)."""
        self.now = now
        done = self.overlay is not None and self.overlay.discover(now)
        return done, self.out.take()

    # -- routing -----------------------------------------------------------------------

    def send(
        self,
        data: bytes,
        now: float,
        *,
        needs: str | None = None,
        author: str | None = None,
        via: Incoming | None = None,
        key: str | None = None,
    ) -> None:
        """Route an extension's control payload to the links the router picks, only those
        that announced ``needs`` (``author``: relayed for that ``Addr``, never sent back to
        its link; ``via``: the connection it came in on, None for ours; ``key``: its ID, for
        a router that routes by ID, ``Batch.key``).  Called from within an input."""
        batch = Batch(via, needs, key)
        batch.add(data, None, author)
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
        ident = None
        for signer in self.signers:
            message, ident = signer.sign(message)
        return message, self.originate(message, now, ident, marked=True)

    def originate(
        self, message: Message, now: float, ident: Shown | None = None, *, marked: bool = False
    ) -> list[Action]:
        """Send a message of ours built whole (``say``; a sealed DM), shown to our front ends
        with ``ident``.  ``marked``: its ID is in the seen cache already.  Raises ValueError."""
        self.now = now
        if not marked and not self.seen.add(message.id, now):
            raise ValueError("a message with that ID was sent or seen already")
        data = codec.encode(message)
        limit = self.config.limits.max_size
        if len(data) > limit:
            raise ValueError(f"message too long: {len(data)} bytes encoded, peers accept {limit}")
        if self.flood is not None:
            self.flood.own(now)  # OwnLimit: peers would drop it
        self.stats.sent += 1
        self.out.emit(Delivered(message, own=True, size=len(data), ident=ident, data=data))
        batch = Batch()
        batch.add(data, message, None)
        self._relay(batch, now)
        return self.out.take()

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
        """Close an outgoing link, or else an incoming connection; raises ``AddressError``."""
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
        self.find_out.link_up(now)
        self._speaks(link, now)
        return self.out.take()

    def link_speaks(self, link: Peer, caps: frozenset[str], now: float) -> list[Action]:
        """The link's peer wrote its capability banner (``hello.py``): from now on it may
        be sent what needs them; the linkers' payloads go next, before the rest of the
        replay."""
        self.now = now
        if self.table.outgoing.get(link.addr) is link and link.state is State.CONNECTED:
            link.caps = caps
            self._speaks(link, now)
            self.out.woken[link.addr] = link
        return self.out.take()

    def _speaks(self, link: Peer, now: float) -> None:
        if not link.caps:
            return
        first = [data for linker in self.linkers for data in linker.linked(link, now)]
        if first:
            link.pending = itertools.chain(first, link.pending)

    def tick(self, now: float) -> tuple[float, list[Action]]:
        """Periodic work (presence announcements and expiry): when to tick next."""
        self.now = now
        at = min(self.presence.tick(now), self.find_out.tick(now))
        if self.overlay is not None:
            at = min(at, self.overlay.tick(now))
        return at, self.out.take()

    def goodbye(self, now: float) -> list[Action]:
        """A clean exit: tell the peers that speak presence that we are leaving."""
        self.now = now
        self.presence.goodbye(now)
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
        for watcher in self.watchers:
            watcher.link_failed(link, now)
        return self.out.take()

    def link_redial(self, link: Peer, now: float) -> None:
        self.links.redial(link, now)

    def link_ended(self, link: Peer) -> None:
        self.links.ended(link)

    # -- snapshots for front ends ------------------------------------------------------

    def peers(self, now: float) -> list[PeerInfo]:
        return peer_infos(self.table, now)

    def users(self, now: float) -> list[UserInfo]:
        """Who is online (presence.py), ourselves first."""
        return self.presence.snapshot(now)

    def blacklist(self, now: float) -> list[BlacklistEntry] | None:
        """Who flood control cut off; None when flood control is off."""
        return blacklist_entries(self.flood, now) if self.flood is not None else None

    def _replay_age(self) -> float:
        return replay_age(self.seen.span(self.now), self.config.seen.skew)
