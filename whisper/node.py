"""The whispernet node: the trio shell that runs the relay engine's actions.

Rules (the relay's decisions are the engine's, ``engine/``; PROTOCOL.md §5 is normative):
- One trio nursery holds the TCP acceptor, one task per incoming connection, one task per
  outgoing link (``link.py``), discovery (``discovery.py``) and the front ends' file saves.
- Every engine input goes through one method here that passes ``trio.current_time()`` and
  carries out the actions it returns (``_apply``).  The shell keeps only what the engine
  cannot: the tasks of the links (``link.LinkTasks``, started on ``Dial``, stopped on
  ``CloseLink``) and the cancel scopes of the incoming connections.
- An incoming connection is read in chunks of ``readers.RECEIVE_BYTES``; each chunk is one
  engine batch.  The stream is always closed in ``finally``.  Its task owns its lifetime;
  the reading is done by one task for all of them (``readers.py``: a wake-up reads every
  socket that is ready), which hands each chunk to the engine; while flood control paces
  the connection, its own task waits and resumes it, and the socket is not read.
- Front ends use only what is public here: commands (``say``, ``connect`` ...), snapshots
  (``peers()``, ``blacklist()``, ``files()``) and events through ``subscribe()``: a bounded
  ``Subscription`` each; when one is full its events are dropped (and the front end told
  how many) rather than stalling the node.  Status events are also logged.
- Blocking file I/O (``-downloads`` saves) runs in a worker thread, off the event loop.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import trio

from .addr import format_hostport, outward_ipv4
from .config import Config
from .discovery import run_discovery
from .engine import CloseIncoming, CloseLink, Deliver, Dial, Engine, Flush, Incoming, Retry, Save
from .engine.actions import Action
from .engine.presence import UserInfo
from .engine.snapshots import BlacklistEntry, PeerInfo, Stats
from .events import Delivered, Event, Notice
from .files import FileError, StoredFile
from .files_io import save_in
from .flood import Entry
from .identity.stages import IdentityLayer
from .link import LinkTasks
from .message import Message
from .peers import Dialled, Peer
from .readers import Readers
from .subscription import DEFAULT_MAX_BYTES, DEFAULT_MAX_EVENTS, Subscription

GOODBYE_GRACE = 0.5  # seconds the links get to write our goodbye on a clean exit
GOODBYE_POLL = 0.02
T = TypeVar("T")

log = logging.getLogger("whisper.node")


class Node:
    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self.engine = Engine(self.config)
        self._subscribers: list[Subscription] = []
        self._links = LinkTasks(self, self.config.connections, self.engine.link_ended)
        self._incoming: dict[Incoming, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None
        self._readers: Readers | None = None  # reads every incoming connection (run)
        #: Each may hold events back from the front ends and publish them later through
        #: ``publish_now`` (the history store: shown once committed, ``store/stage.py``).
        self.holds: list[Callable[[list[Event]], list[Event]]] = []
        self.history: Any = None  # store.stage.HistoryStage, when history is on

    @property
    def addr(self) -> str:
        """Our advertised IP:PORT, known once ``run()`` has bound."""
        return self.engine.addr

    @property
    def nick(self) -> str:
        return self.engine.nick

    @property
    def stats(self) -> Stats:
        return self.engine.stats

    # -- lifetime --------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and relay until cancelled.  ``task_status.started`` gets our IP:PORT."""
        cfg = self.config
        # Bind before the nursery so that "address in use" surfaces as a plain OSError.
        listeners = await trio.open_tcp_listeners(cfg.port, host=cfg.host)
        self._readers = readers = Readers()
        with contextlib.closing(readers):
            await self._serve(listeners, task_status)

    async def _serve(
        self, listeners: list[trio.SocketListener], task_status: trio.TaskStatus[str]
    ) -> None:
        cfg = self.config
        async with trio.open_nursery() as nursery:
            assert self._readers is not None
            nursery.start_soon(self._readers.run)
            await nursery.start(trio.serve_listeners, self._serve_incoming, listeners)
            port = listeners[0].socket.getsockname()[1]
            advertised = cfg.advertise or cfg.host
            if advertised in ("", "0.0.0.0", "::"):
                advertised = outward_ipv4()
            self._nursery = nursery
            self._apply(self.engine.start(format_hostport(advertised, port), trio.current_time()))
            log.debug("listening on %s", self.addr)
            nursery.start_soon(self._tick)
            if cfg.discovery is not None:
                await nursery.start(run_discovery, self, cfg.discovery, cfg.host)
            task_status.started(self.addr)

    # -- what front ends call ----------------------------------------------------------

    @contextlib.contextmanager
    def subscribe(
        self, buffer: int = DEFAULT_MAX_EVENTS, max_bytes: int = DEFAULT_MAX_BYTES
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
        """Send a chat message (``extra``: extension keys).  Raises ValueError for the user."""
        return self._done(self.engine.say(body, extra, now=trio.current_time()))

    @property
    def identity(self) -> IdentityLayer | None:
        """Extension 13 (our key, pins, channels), or None when it is off."""
        return self.engine.identity

    def direct(self, target: str, text: str) -> Message:
        """Send a DM to a nick or fingerprint; raises ValueError (``DMError``) for the user."""
        if self.engine.identity is None:
            raise ValueError("identities are off: direct messages need a key")
        return self._done(self.engine.identity.direct(target, text, trio.current_time()))

    def connect(self, addr: str) -> Dialled:
        """Open an outgoing link (true if dialling, else why not).  Raises ``AddressError``."""
        return self._done(self.engine.connect(addr, trio.current_time()))

    def disconnect(self, addr: str) -> bool:
        """Close an outgoing link (False: there is none); not redialled for a while."""
        return self._done(self.engine.disconnect(addr, trio.current_time()))

    def learned(self, addr: str) -> bool:
        """Dial an address heard of other than in a message (discovery), as for ``Addr``."""
        return self._done(self.engine.learned(addr, trio.current_time()))

    def set_nick(self, nick: str) -> None:
        self.engine.nick = nick
        if self._nursery is not None:  # announced at once (presence.py)
            self._apply(self.engine.tick(trio.current_time())[1])

    def users(self) -> list[UserInfo]:
        """Who is online (presence), ourselves first (callable off the trio loop)."""
        return self.engine.users(self._now())

    async def farewell(self) -> None:
        """A clean exit: say goodbye to the peers that speak presence, and give the links
        up to ``GOODBYE_GRACE`` seconds to write it."""
        if self._nursery is None:
            return
        self._apply(self.engine.goodbye(trio.current_time()))
        with trio.move_on_after(GOODBYE_GRACE):
            while self._links.busy():
                await trio.sleep(GOODBYE_POLL)

    def unblock(self, key: str) -> list[Entry]:
        """Lift the blacklist entries for an ``Addr`` or host IP; returns them."""
        return self.engine.unblock(key)

    def peers(self) -> list[PeerInfo]:
        """Every connection, outgoing links first (callable off the trio loop: see ``_now``)."""
        return self.engine.peers(self._now())

    def blacklist(self) -> list[BlacklistEntry] | None:
        """Who flood control cut off, for how long; None when flood control is off."""
        return self.engine.blacklist(self._now())

    def files(self) -> list[StoredFile]:
        """The files received and still kept in memory, oldest first."""
        return self.engine.files.files()

    def file(self, number: int) -> StoredFile | str:
        """Received file ``number``, or a line saying why there is none."""
        return self.engine.files.get(number) or self.engine.files.missing(number)

    def _now(self) -> float:
        """The trio clock; for a front end calling from outside trio (the terminal UI's
        prompt_toolkit side, in the same thread), the time of the engine's last input."""
        try:
            return trio.current_time()
        except RuntimeError:
            return self.engine.now

    # -- what the links' tasks report (link.LinkHost) -----------------------------------

    def link_connected(self, link: Peer, caps: frozenset[str] = frozenset()) -> None:
        self._apply(self.engine.link_connected(link, trio.current_time(), caps))

    def link_speaks(self, link: Peer, caps: frozenset[str]) -> None:
        self._apply(self.engine.link_speaks(link, caps, trio.current_time()))

    def data_to_send(self, link: Peer) -> bytes:
        return self.engine.data_to_send(link)

    def link_failed(self, link: Peer, error: str, *, stalled: bool = False) -> None:
        self._apply(self.engine.link_failed(link, error, trio.current_time(), stalled=stalled))

    def link_redial(self, link: Peer) -> None:
        self.engine.link_redial(link, trio.current_time())

    async def _tick(self) -> None:
        """Presence: announce every period, forget the quiet (``Engine.tick``)."""
        while True:
            at, actions = self.engine.tick(trio.current_time())
            self._apply(actions)
            await trio.sleep_until(at)

    # -- incoming connections ------------------------------------------------------------

    async def _serve_incoming(self, stream: trio.SocketStream) -> None:
        async with stream:
            try:
                remote = format_hostport(*stream.socket.getpeername()[:2])
            except OSError:
                return
            conn, actions = self.engine.open_incoming(remote, trio.current_time())
            if isinstance(conn, str):
                return
            try:
                with trio.CancelScope() as scope:
                    self._incoming[conn] = scope
                    self._apply(actions)  # another connection may have given way to it
                    await self._read(stream, conn)
            finally:
                del self._incoming[conn]
                self.engine.closed_incoming(conn)

    async def _read(self, stream: trio.SocketStream, conn: Incoming) -> None:
        if conn.greeting:  # the capability banner (engine/hello.py): a few bytes, never blocks
            try:
                await stream.send_all(conn.greeting)
            except trio.BrokenResourceError as exc:  # it connected and went at once
                log.debug("incoming %s broke: %s", conn.remote, exc.__cause__ or exc)
                return
        engine, fd = self.engine, stream.socket.fileno()
        assert self._readers is not None

        def chunk(data: bytes) -> bool:  # called by the readers' task: go on reading?
            self._apply(engine.receive_data(conn, data, trio.current_time()))
            return conn.closed is None and conn.resume_at is None

        while conn.closed is None:
            more = await self._readers.watch(fd, chunk)  # False: EOF (or broken)
            while conn.resume_at is not None:  # paced (flood control): read nothing until then
                await trio.sleep_until(conn.resume_at)  # (what came before an EOF too)
                self._apply(engine.resume(conn, trio.current_time()))
            if not more:
                log.debug("incoming %s ended", conn.remote)
                return

    # -- carrying out the engine's actions -----------------------------------------------

    def _done(self, outcome: tuple[T, list[Action]]) -> T:
        """Carry out what an engine command asks; its result."""
        result, actions = outcome
        self._apply(actions)
        return result

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case Deliver(events):
                    self._publish(events)
                case Flush(links):
                    for link in links:
                        if task := self._links.get(link):
                            task.wake()
                case Dial(link):
                    if self._nursery is None:
                        raise RuntimeError("the node is not running")
                    self._links.start(self._nursery, link)
                case Retry(link, at):
                    if task := self._links.get(link):
                        task.retry_at = at
                case CloseLink(link):
                    if task := self._links.get(link):
                        task.close()
                case CloseIncoming(conn):
                    if scope := self._incoming.get(conn):
                        scope.cancel()
                case Save(file):
                    assert self._nursery is not None
                    self._nursery.start_soon(self._save, file)

    async def _save(self, file: StoredFile) -> None:
        """``-downloads DIR``: save a received file there, off the event loop."""
        directory = self.config.files.downloads
        assert directory is not None
        try:
            path = await trio.to_thread.run_sync(save_in, directory, file.name, file.data)
        except FileError as exc:
            self._publish([Notice(f"file #{file.number} not saved: {exc}", True)])
        else:
            self._publish([Notice(f"saved file #{file.number} as {path}")])

    def _publish(self, events: list[Event]) -> None:
        for hold in self.holds:
            events = hold(events)
        if events:
            self.publish_now(events)

    def publish_now(self, events: list[Event]) -> None:
        """Offer events to every front end; log the status events."""
        for event in events:
            if type(event) is not Delivered:
                log.log(logging.WARNING if event.warning else logging.INFO, "%s", event.text)
        for subscription in self._subscribers:
            subscription.offer_all(events)
