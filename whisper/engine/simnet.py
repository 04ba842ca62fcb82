"""An in-process network of engines: the real relay code, no sockets, a virtual clock.

For tests and simulations (a thousand peers in one process).  Rules:
- ``SimNet`` plays every shell at once: it carries out each engine's actions as ``node.py``
  does, with byte pipes instead of TCP.  A link's bytes reach the engine at its address as
  one ``receive_data`` per ``data_to_send`` (one chunk per batch, as a socket would read it).
- A dial to an address that has no engine fails ("connection refused"); a link whose
  target goes away (``remove``) breaks ("peer closed the connection").  Retries wait on the
  virtual clock, and so does a connection flood control paces (its link is not read until
  ``resume_at``, as TCP would push back): ``advance(seconds)`` moves it and fires what is due.
- ``run()`` carries out work until nothing is left (dials, writes, closes), in the order it
  arose; it never advances the clock.  Everything is deterministic given the engines'
  random sources (``PeerTable`` jitter).
- An engine that asks for a tick (a ``Tick`` action: the overlay router's timers) is
  ticked by ``advance`` when it falls due, and then at what ``Engine.tick`` answers.
- A link reads the target's banner (``Engine.greeting``) as soon as it is up (hello.py).
- ``raw(addr)`` opens a connection to an engine as a foreign peer would (an origin that
  writes objects or bytes); what engines deliver to front ends is in ``SimPeer.events``.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ..codec import encode_object
from ..config import Config
from ..events import Delivered, Event
from ..identity.batch import answer
from ..peers import Peer
from .actions import Action, CloseIncoming, CloseLink, Deliver, Dial, Flush, Retry, Save, Tick
from .hello import parse_banner
from .incoming import Incoming
from .relay import Engine

WALL_START = 1_800_000_000.0  # the wall clock at virtual time 0 (2027)


@dataclass(eq=False)
class SimPeer:
    engine: Engine
    events: list[Event] = field(default_factory=list)
    saved: list[Any] = field(default_factory=list)  # files a Save action asked for

    @property
    def addr(self) -> str:
        return self.engine.addr

    @property
    def delivered(self) -> list[Delivered]:
        """What front ends were shown of others' messages."""
        return [e for e in self.events if type(e) is Delivered and not e.own]

    @property
    def bodies(self) -> list[str]:
        return [e.message.body for e in self.delivered]


class SimNet:
    def __init__(self, *, config: Config | None = None) -> None:
        """``config``: the template every engine's ``Config`` is copied from."""
        self.now = 0.0
        self.template = config or Config(host="10.0.0.1", discovery=None)
        self.peers: dict[str, SimPeer] = {}
        self._pipes: dict[Peer, tuple[SimPeer, Incoming]] = {}  # link -> (target, its end)
        self._owners: dict[Peer, SimPeer] = {}
        self._conns: dict[Incoming, Peer | None] = {}  # incoming end -> the link feeding it
        self._timers: list[tuple[float, SimPeer, Peer]] = []  # (when, whose, link): a retry
        self._ticks: dict[SimPeer, float] = {}  # an engine that asked for ticks -> when next
        self._work: deque[tuple[str, SimPeer, Any]] = deque()
        self._ports = itertools.count(40000)

    def wall(self) -> float:
        return WALL_START + self.now

    # -- the network -------------------------------------------------------------------

    def add(self, addr: str, **changes: Any) -> SimPeer:
        """Start an engine listening at ``addr`` (``changes``: fields of its Config)."""
        config = replace(self.template, wall_clock=self.wall, **changes)
        peer = SimPeer(Engine(config))
        self.peers[addr] = peer
        self._apply(peer, peer.engine.start(addr, self.now))
        return peer

    def remove(self, addr: str) -> None:
        """The engine at ``addr`` goes away: every connection to and from it breaks."""
        peer = self.peers.pop(addr)
        self._timers = [t for t in self._timers if t[1] is not peer]
        self._ticks.pop(peer, None)
        for link, (target, _) in list(self._pipes.items()):
            if target is peer:
                self._break(link, "peer closed the connection")
            elif self._owners.get(link) is peer:
                self._close_pipe(link)

    def raw(self, addr: str, remote: str = "10.9.9.9:1") -> Incoming:
        """A connection to the engine at ``addr`` from a foreign peer at ``remote``."""
        peer = self.peers[addr]
        conn, actions = peer.engine.open_incoming(remote, self.now)
        assert isinstance(conn, Incoming), conn
        self._conns[conn] = None
        self._apply(peer, actions)
        return conn

    def write(
        self, addr: str, conn: Incoming, *objects: dict | bytes, batched: bool = False
    ) -> None:
        """Write objects (encoded) or raw bytes on ``conn``, one chunk, then run.  With
        ``batched``, its signatures are checked in a batch first, as the node's verifier
        does (``verifier.py``; the reply computed here)."""
        data = b"".join(o if isinstance(o, bytes) else encode_object(o) for o in objects)
        peer = self.peers[addr]
        engine = peer.engine
        if not batched or engine.identity is None:
            self._apply(peer, engine.receive_data(conn, data, self.now))
            self.run()
            return
        items, actions = engine.decode(conn, data, self.now)
        self._apply(peer, actions)
        checker = engine.identity.checker
        work = checker.prepare(items, engine.seen)
        if work is not None:
            checker.accept(conn, work, answer(work.payload))
        self._apply(peer, engine.receive_items(conn, items, self.now))
        self.run()

    def say(self, addr: str, body: str, **extra: Any) -> None:
        peer = self.peers[addr]
        _, actions = peer.engine.say(body, extra or None, now=self.now)
        self._apply(peer, actions)
        self.run()

    def connect(self, addr: str, to: str) -> None:
        peer = self.peers[addr]
        _, actions = peer.engine.connect(to, self.now)
        self._apply(peer, actions)
        self.run()

    def linked(self, addr: str) -> list[str]:
        """The connected outgoing links of the engine at ``addr``."""
        return [
            p.addr for p in self.peers[addr].engine.peers(self.now) if p.outgoing and p.connected
        ]

    # -- time ----------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the clock on, firing each retry and each paced connection's resumption as it
        falls due, and run."""
        end = self.now + seconds
        while True:
            paced = [(conn.resume_at, link) for conn, link in self._conns.items() if conn.resume_at]
            due = [t for t in self._timers if t[0] <= end]
            first_paced = min((p for p in paced if p[0] <= end), default=None, key=lambda p: p[0])
            first = min(due, default=None, key=lambda t: t[0])
            tick = min(self._ticks.items(), default=None, key=lambda t: t[1])
            if (
                tick is not None
                and tick[1] <= end
                and (first is None or tick[1] < first[0])
                and (first_paced is None or tick[1] < first_paced[0])
            ):
                peer, at = tick
                self.now = max(self.now, at)
                at, actions = peer.engine.tick(self.now)
                self._ticks[peer] = max(at, self.now + 1e-3)
                self._apply(peer, actions)
            elif first_paced is not None and (first is None or first_paced[0] <= first[0]):
                self.now = max(self.now, first_paced[0])
                self._resume(first_paced[1])
            elif first is not None:
                self._timers.remove(first)
                at, peer, link = first
                self.now = max(self.now, at)
                peer.engine.link_redial(link, self.now)
                self._work.append(("dial", peer, link))
            else:
                break
            self.run()
        self.now = end
        self.run()

    def _resume(self, link: Peer | None) -> None:
        """A paced connection's time has come: it handles what it held, then reads on."""
        target, conn = self._pipes[link] if link is not None else (None, None)
        if target is None or conn is None:
            return
        self._apply(target, target.engine.resume(conn, self.now))
        self._flush(self._owners[link], link)

    # -- carrying out actions ------------------------------------------------------------

    def run(self) -> None:
        while self._work:
            kind, peer, item = self._work.popleft()
            if kind == "dial":
                self._dial(peer, item)
            elif kind == "flush":
                self._flush(peer, item)

    def _apply(self, peer: SimPeer, actions: Iterable[Action]) -> None:
        for action in actions:
            match action:
                case Deliver(events):
                    peer.events += events
                case Dial(link):
                    self._owners[link] = peer
                    self._work.append(("dial", peer, link))
                case Flush(links):
                    self._work.extend(("flush", peer, link) for link in links)
                case Retry(link, at):
                    self._timers.append((at, peer, link))
                case Tick(at):
                    if at < self._ticks.get(peer, float("inf")) and peer.addr in self.peers:
                        self._ticks[peer] = at
                case CloseLink(link):
                    self._close_pipe(link)
                    self._owners.pop(link, None)
                    peer.engine.link_ended(link)
                case CloseIncoming(conn):
                    self._close_incoming(peer, conn)
                case Save(file):
                    peer.saved.append(file)

    def _dial(self, peer: SimPeer, link: Peer) -> None:
        if self._owners.get(link) is not peer:
            return  # closed meanwhile
        target = self.peers.get(link.addr)
        if target is None:
            self._fail(peer, link, "connection refused")
            return
        remote = f"{peer.addr.rpartition(':')[0]}:{next(self._ports)}"
        conn, actions = target.engine.open_incoming(remote, self.now)
        self._apply(target, actions)
        if not isinstance(conn, Incoming):  # refused: it accepted and closed at once
            self._fail(peer, link, "peer closed the connection")
            return
        self._pipes[link] = (target, conn)
        self._conns[conn] = link
        self._apply(peer, peer.engine.link_connected(link, self.now))
        caps = parse_banner(conn.greeting)  # what the target wrote first, read at once
        if caps:
            self._apply(peer, peer.engine.link_speaks(link, caps, self.now))
        self._flush(peer, link)

    def _flush(self, peer: SimPeer, link: Peer) -> None:
        pipe = self._pipes.get(link)
        if pipe is None:
            return
        target, conn = pipe
        while conn.resume_at is None and (data := peer.engine.data_to_send(link)):
            self._apply(target, target.engine.receive_data(conn, data, self.now))
            if link not in self._pipes:
                return

    def _close_pipe(self, link: Peer) -> None:
        pipe = self._pipes.pop(link, None)
        if pipe is not None:
            target, conn = pipe
            self._conns.pop(conn, None)
            self._apply(target, target.engine.receive_data(conn, b"", self.now))
            target.engine.closed_incoming(conn)

    def _close_incoming(self, peer: SimPeer, conn: Incoming) -> None:
        link = self._conns.pop(conn, None)
        peer.engine.closed_incoming(conn)
        if link is not None and self._pipes.pop(link, None) is not None:
            self._fail(self._owners[link], link, "peer closed the connection")

    def _break(self, link: Peer, error: str) -> None:
        _, conn = self._pipes.pop(link)
        self._conns.pop(conn, None)
        self._fail(self._owners[link], link, error)

    def _fail(self, peer: SimPeer, link: Peer, error: str) -> None:
        self._apply(peer, peer.engine.link_failed(link, error, self.now))
