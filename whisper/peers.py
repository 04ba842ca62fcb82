"""The peer table: every connection we have or want, and the dial policy.  Pure state.

Rules:
- Outgoing peers are keyed by the address string we dial (as learned from ``Addr`` or typed
  by the user).  We never dial our own advertised address, and have at most ``max_outgoing``
  outgoing peers.
- A failed dial or a broken link waits before the next try: ``backoff_base * 2**(n-1)``
  seconds after the n-th consecutive failure, capped at ``backoff_max``, with +-25% jitter.
  A link counts as a success only once it has stayed up ``stable_after`` seconds: a peer
  that accepts and hangs up at once keeps failing (otherwise it would be redialled, and
  sent our backlog, twice a second for ever).  A link that *stalled* is never a success,
  however long it was up: a peer that accepts and stops reading is given up on too.
  After ``max_failures`` consecutive failures we give up on the address; an address given up
  on is not dialled again because a message mentions it until ``give_up_for`` has passed
  (the user's ``/connect`` always dials), and is forgotten after that.
- An outgoing peer *is* the link's state: besides the dial state it holds the link's send
  queue, its backlog replay and the capabilities its peer announced (set by the engine).
  ``outgoing`` is the one list of links there is; the trio shell keeps only the tasks.
- ``should_dial`` says why an address is not dialled, as a ``Dialled`` a front end can
  explain (``Admission.verdict``).
- Incoming connections are listed by their remote address.  At most ``max_incoming`` in
  all, and at most ``max_per_host`` from one network (``connmgr.network``: a public IPv4
  /24 or IPv6 /64, a private address on its own), so that one machine or subnet cannot take
  every slot; loopback and our own IP are exempt from the per-network cap (every peer on
  this machine shares them).  A newcomer beyond a cap takes
  the slot of a connection that gives way (``connmgr.py``: idle past its grace period, never
  one that delivered a new message recently); it is refused only when none may.  The node
  tells the table when a connection delivers a new message (``delivered``).
- When the outgoing table is full, an address whose own message we just accepted (``spoke``)
  or that the user asked for replaces a link that gives way (``connmgr.py``: its ``Addr`` has
  been quiet, and the user did not ask for it); discovery never replaces one.  The replaced
  address is not given up on: it is dialled again when it speaks.
"""

from __future__ import annotations

import enum
import ipaddress
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import connmgr
from .connmgr import DEFAULT_ACTIVE_FOR, DEFAULT_GRACE, host_of, network

if TYPE_CHECKING:
    from .backlog import LinkReplay
    from .flood import LinkBudget
    from .sendqueue import SendQueue

DEFAULT_MAX_OUTGOING = 128
DEFAULT_MAX_FAILURES = 5
DEFAULT_BACKOFF_BASE = 0.5
DEFAULT_BACKOFF_MAX = 30.0
DEFAULT_GIVE_UP_FOR = 600.0
DEFAULT_STABLE_AFTER = 10.0
DEFAULT_MAX_INCOMING = 128
DEFAULT_MAX_PER_HOST = 16
CONNECT_TIMEOUT = 5.0
#: A link whose writes make no progress for this long has stalled (PROTOCOL.md §5.3).
SEND_STALL_TIMEOUT = 10.0


@dataclass(frozen=True)
class ConnectionConfig:
    """How many connections, how links are dialled and retried, what a link may hold
    waiting (``sendqueue.py``) and when it has stalled (``link.py``).  ``Config.connections``."""

    max_outgoing: int = DEFAULT_MAX_OUTGOING
    max_failures: int = DEFAULT_MAX_FAILURES
    backoff_base: float = DEFAULT_BACKOFF_BASE
    max_incoming: int = DEFAULT_MAX_INCOMING
    max_per_host: int = DEFAULT_MAX_PER_HOST  # per connmgr.network; loopback exempt
    slot_grace: float = DEFAULT_GRACE  # a new connection cannot be made to give way (connmgr.py)
    slot_active_for: float = DEFAULT_ACTIVE_FOR  # ... nor one that produced within this
    connect_timeout: float = CONNECT_TIMEOUT
    stall_timeout: float = SEND_STALL_TIMEOUT
    queue_bytes: int = 8 * 1024 * 1024  # one link's queue
    queue_items: int = 20_000
    send_budget: int = 64 * 1024 * 1024  # all the queues together (sendqueue.py)
    receive_budget: int = 128 * 1024 * 1024  # all unfinished incoming messages (budget.py)


class State(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKOFF = "waiting to retry"


class Dialled(enum.Enum):
    """Whether an address is dialled, or why not.  True only for ``STARTED``."""

    STARTED = "dialling"
    OURSELVES = "it is our own address"
    ALREADY = "already linked"
    FULL = "the outgoing links are at their limit"
    GIVEN_UP = "given up on a while ago"
    BLACKLISTED = "blacklisted by flood control"  # decided by flood.py, not by the table

    def __bool__(self) -> bool:
        return self is Dialled.STARTED


@dataclass(slots=True, eq=False)
class Peer:
    addr: str
    outgoing: bool
    state: State
    since: float
    failures: int = 0
    last_error: str = ""
    net: str = ""  # its /24 or /64 (connmgr.network)
    opened: float = 0.0  # when it took its slot
    produced: float | None = None  # the last new message it delivered (out: from its Addr)
    pinned: bool = False  # the user asked for it: never replaced
    reverse: bool = False  # a two-way link: written on a connection its peer opened to us
    asked_reverse: bool = False  # we asked its peer to write back on this connection
    close: Callable[[str], None] | None = None  # the engine's handle on an incoming one: why
    # -- an outgoing link's state, kept by the engine (engine/links.py) --
    queue: SendQueue | None = None
    replay: LinkReplay | None = None
    caps: frozenset[str] = field(default_factory=frozenset)
    pending: Iterator[bytes] = field(default_factory=lambda: iter(()))  # replay, then queue
    overflows_logged: int = 0  # the queue's overflow episodes logged so far
    budget: LinkBudget | None = None  # flood control: what a receiver accepts (flood.py)


@dataclass(frozen=True, slots=True)
class Admission:
    """A decision about a new slot: ``refused`` says why not, else ``replaces`` names the
    slot that gave way (the table has dropped it; the node closes it), if any."""

    refused: str = ""
    replaces: Peer | None = None
    verdict: Dialled = Dialled.STARTED  # an outgoing link's: why not, for front ends

    def __bool__(self) -> bool:
        return not self.refused


class PeerTable:
    def __init__(
        self,
        self_addr: str = "",
        *,
        max_outgoing: int = DEFAULT_MAX_OUTGOING,
        max_failures: int = DEFAULT_MAX_FAILURES,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        give_up_for: float = DEFAULT_GIVE_UP_FOR,
        stable_after: float = DEFAULT_STABLE_AFTER,
        max_incoming: int = DEFAULT_MAX_INCOMING,
        max_per_host: int = DEFAULT_MAX_PER_HOST,
        grace: float = DEFAULT_GRACE,
        active_for: float = DEFAULT_ACTIVE_FOR,
        rng: random.Random | None = None,
    ) -> None:
        """Limits as in ``ConnectionConfig`` (``from_config``); ``rng`` for the jitter."""
        self.self_addr = self_addr
        self.max_outgoing = max_outgoing
        self.max_failures = max_failures
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.give_up_for = give_up_for
        self.stable_after = stable_after
        self.max_incoming = max_incoming
        self.max_per_host = max_per_host
        self.grace = grace
        self.active_for = active_for
        self._rng = rng or random.Random()
        self.outgoing: dict[str, Peer] = {}
        self.incoming: dict[str, Peer] = {}
        self._given_up: dict[str, float] = {}  # addr -> clock time we gave up

    @classmethod
    def from_config(cls, config: ConnectionConfig, self_addr: str = "") -> PeerTable:
        return cls(
            self_addr,
            max_outgoing=config.max_outgoing,
            max_failures=config.max_failures,
            backoff_base=config.backoff_base,
            max_incoming=config.max_incoming,
            max_per_host=config.max_per_host,
            grace=config.slot_grace,
            active_for=config.slot_active_for,
        )

    # -- outgoing --------------------------------------------------------------------

    def should_dial(
        self, addr: str, now: float, *, by_user: bool = False, spoke: bool = False
    ) -> Admission:
        """Decide whether to open an outgoing link to ``addr``; if so, it is recorded.
        ``spoke``: a message of ``addr``'s own was just accepted.  When the table is full,
        a spoken or user-requested address replaces a link that gives way."""
        if addr == self.self_addr:
            return _not(Dialled.OURSELVES)
        peer = self.outgoing.get(addr)
        if peer is not None:
            peer.pinned |= by_user
            return _not(Dialled.ALREADY)
        gave_up = self._given_up.get(addr)
        if gave_up is not None:
            if not by_user and now - gave_up < self.give_up_for:
                return _not(Dialled.GIVEN_UP)
            del self._given_up[addr]
        replaces = None
        if len(self.outgoing) >= self.max_outgoing:
            if by_user or spoke:
                replaces = self._victim(self.outgoing.values(), now)
            if replaces is None:
                return _full(f"{self.max_outgoing} outgoing links", Dialled.FULL)
            del self.outgoing[replaces.addr]
        self.outgoing[addr] = Peer(
            addr,
            True,
            State.CONNECTING,
            now,
            net=network(host_of(addr)),
            opened=now,
            produced=now if spoke else None,
            pinned=by_user,
        )
        return Admission(replaces=replaces)

    def connecting(self, addr: str, now: float) -> None:
        self._set(addr, State.CONNECTING, now)

    def connected(self, addr: str, now: float) -> None:
        peer = self._set(addr, State.CONNECTED, now)
        if peer:
            peer.last_error = ""

    def failed(self, addr: str, now: float, error: str, *, stalled: bool = False) -> float | None:
        """Record a failure (``stalled``: the link stopped making progress); return the delay
        before the next try, or None to give up."""
        peer = self.outgoing.get(addr)
        if peer is None:
            return None
        if not stalled and peer.state is State.CONNECTED and now - peer.since >= self.stable_after:
            peer.failures = 0  # it had been working: this is a fresh run of failures
        peer.failures += 1
        peer.last_error = error
        if peer.failures >= self.max_failures:
            self.remove(addr)
            self._give_up(addr, now)
            return None
        peer.state, peer.since = State.BACKOFF, now
        delay = min(self.backoff_max, self.backoff_base * 2 ** (peer.failures - 1))
        return delay * self._rng.uniform(0.75, 1.25)

    def remove(self, addr: str) -> None:
        self.outgoing.pop(addr, None)

    def forget(self, addr: str, now: float) -> None:
        """Stop dialling ``addr`` because a message mentions it, as if we had given up."""
        self.remove(addr)
        self._give_up(addr, now)

    def given_up(self) -> list[str]:
        return list(self._given_up)

    def _give_up(self, addr: str, now: float) -> None:
        """Note it, and forget those whose wait is over: every address a peer names could
        end up here.  The dict is kept in time order, so the expired ones are at its front."""
        given_up = self._given_up
        given_up.pop(addr, None)
        given_up[addr] = now
        while given_up:
            oldest = next(iter(given_up))
            if now - given_up[oldest] < self.give_up_for:
                break
            del given_up[oldest]

    # -- incoming --------------------------------------------------------------------

    def admit(self, remote: str, now: float, close: Callable[[str], None]) -> Admission:
        """Decide on a new connection from ``remote`` (IP:PORT); if admitted, it is recorded
        (``close``: how the node closes it, should it have to give way)."""
        host, own = host_of(remote), host_of(self.self_addr)
        net = network(host)
        replaces = None
        if not (host == own or _is_loopback(host)):
            mates = [p for p in self.incoming.values() if p.net == net and host_of(p.addr) != own]
            if len(mates) >= self.max_per_host:
                replaces = self._victim(mates, now)
                if replaces is None:
                    return _full(f"{self.max_per_host} incoming connections from {net}")
        if replaces is None and len(self.incoming) >= self.max_incoming:
            replaces = self._victim(self.incoming.values(), now)
            if replaces is None:
                return _full(f"{self.max_incoming} incoming connections")
        if replaces is not None:
            del self.incoming[replaces.addr]
        self.incoming[remote] = Peer(
            remote, False, State.CONNECTED, now, net=net, opened=now, close=close
        )
        return Admission(replaces=replaces)

    def delivered(self, remote: str, addr: str | None, now: float) -> None:
        """A new valid message arrived on ``remote``, written by ``addr`` (its ``Addr``)."""
        peer = self.incoming.get(remote)
        if peer is not None:
            peer.produced = now
        peer = self.outgoing.get(addr) if addr is not None else None
        if peer is not None:
            peer.produced = now

    def closed(self, remote: str) -> None:
        self.incoming.pop(remote, None)

    def _victim(self, slots: Iterable[Peer], now: float) -> Peer | None:
        return connmgr.victim(list(slots), now, grace=self.grace, active_for=self.active_for)

    # -- views -----------------------------------------------------------------------

    def connected_outgoing(self) -> int:
        return sum(1 for p in self.outgoing.values() if p.state is State.CONNECTED)

    def _set(self, addr: str, state: State, now: float) -> Peer | None:
        peer = self.outgoing.get(addr)
        if peer is not None:
            peer.state, peer.since = state, now
        return peer


def _full(what: str, verdict: Dialled = Dialled.FULL) -> Admission:
    return Admission(f"{what} already, none may give way", verdict=verdict)


def _not(verdict: Dialled) -> Admission:
    return Admission(verdict.value, verdict=verdict)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
