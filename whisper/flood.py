"""Flood control (PROTOCOL.md §7.4, extension 12): rate limits, penalties, blacklist.  Pure state.

Rules:
- Every object a connection delivers costs a *work* token (``Connection.pace``): a bucket
  per connection of ``WORK_FACTOR`` times ``conn_rate`` a second, at most one second's
  worth, starting with a fifth of it.  With none left the node stops reading that
  connection until one comes (TCP pushes back on the sender), whatever the objects are:
  reading costs us at most that much work, and being slowed is never a penalty, so a relay
  that forwards a burst of copies we already have (a flood we took in, echoed back) is only
  slowed.
- Every object that is not a duplicate (a new message, a payload without Body, an invalid
  one) also costs a token of the connection's *budget* (``Connection.count``): its own
  bucket (``conn_rate`` a second, up to ``conn_burst``) starts with only ``conn_start``
  tokens (a backlog replay, §7.3), paid from its host's *spare* (``conn_burst`` at once,
  refilling at ``SPARE_RATE`` times ``conn_rate``, shared by every connection from that
  IP), so reconnecting does not renew a burst; when the spare cannot pay, it starts with
  ``MIN_START`` (a hello is heard at once).  Past its own bucket a connection draws on its
  *reserve*, ``RESERVE`` times ``conn_burst``, once in its life: each token of it is paid
  by the spare, or, when the spare is spent, excuses the drop (others spent it).  So a
  young connection can burst like an old one, and a flood on one connection cannot take
  more than its reserve of the spare that its neighbours' bursts need.
- An object that finds its own bucket empty and its reserve spent is dropped and costs a
  penalty point: the connection went over its *own* budget, which nobody else can spend.
- Why a shared spare and not a cap on all of a host's connections: on a shared IP (every
  peer on one machine has 127.0.0.1) such a cap could be spent by any of them, so a flooder
  would silence its neighbours.  The spare only ever grants extra, and each connection keeps
  its own rate; what many connections of one IP may cost together is bounded by how many
  connections it may hold (``peers.py``: 16 per IP, loopback and our own IP exempt).
- A *new* message (past the seen, hash and freshness checks) also takes a token from its
  connection's budget for its origin (``Connection.admit``; ``origin_rate``,
  ``origin_burst``), one per connection and origin, never shared between connections.  A
  message over it is dropped (not displayed, relayed or marked seen) and costs no penalty.
  ``Addr`` is not authenticated, and a relay's connection carries whatever anyone tells the
  relay: a budget keyed by ``Addr``, or blame earned by it, could be spent by a third party.
  Messages that forge a peer's ``Addr`` on another connection leave that peer's own budget
  alone.
- Penalties: each object over the connection budget, and each invalid message the node
  reports (hash mismatch, wrong types, outside the configured timestamp window, a forgery
  of our own ``Addr``: ``penalise``), takes one point from a credit of ``penalty_limit``
  that refills at ``penalty_forgive`` a second.  When the credit is gone, ``FloodCut`` is
  raised to the node, which closes the connection.
- The blacklist names only the host IP of a connection that was cut, for ``blacklist_for``
  seconds; never an ``Addr`` (messages merely claim one).  A new connection from a
  blacklisted IP is refused, and an address at that IP is not dialled, unless the IP is
  shared by many peers (loopback, or our own IP, ``here``): there the IP cannot tell the
  flooder from its neighbours, so the entry only records the cut, and the flooder back is
  held by its new connection's small start and the host's spare, spent.
- Our own sending limit (``own``) is a bucket of its own: nothing a peer sends spends it.
- What we send on one link (``LinkBudget``) is at most what a receiver's new connection
  accepts: its start and reserve at once, then ``conn_rate``.  A relay forwards the sum of
  what all its connections bring, which no receiver can tell from a flood: past it the node
  drops for that link, so the receiver never has a reason to cut us off.  ``LIGHT_SHARE``
  of it is kept for *light* messages: ours, and those of connections that bring no more
  than one person types (``Connection.light``: ``origin_rate`` a second, ``LIGHT_BURST`` at
  once), so a flood through us cannot crowd out a peer who speaks for itself.
- Time is passed in (``now``: ``trio.current_time()`` in the node).  ``pace`` and ``count``
  are on the hot path: one bucket take each in the common case; ``admit`` a dict lookup more.
- State is bounded: at most ``MAX_ORIGINS`` origin buckets per connection (the fullest are
  forgotten first: a full bucket is the same as a new one, and a drained one is what limits
  a flood), ``MAX_HOSTS`` spare buckets, and an origin is named by at most
  ``MAX_ORIGIN_CHARS`` of its ``Addr``.  Spares are kept per IP (per /64 for IPv6, where one
  machine may hold a whole prefix).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .addr import AddressError, parse_hostport
from .blacklist import Blacklist, Entry
from .hosts import host_key, host_of, shared_host
from .ratelimit import TokenBucket

#: Origin buckets one connection keeps (a relay carries many origins; a flood rotates them).
MAX_ORIGINS = 1024
#: Spare buckets kept, one per source host.
MAX_HOSTS = 4096
#: Claimed Addrs a connection's cut notice may name (the one most of its penalties claimed).
MAX_CLAIMS = 16
#: An origin is its ``Addr`` cut to this many characters (``IP:PORT`` and even a host name
#: with a port are shorter): ``Addr`` is any string a peer writes, and origins are kept.
MAX_ORIGIN_CHARS = 320
#: A host's spare refills at this fraction of the connection rate (50 a second).
SPARE_RATE = 0.1
#: What one connection may draw on its host's spare, in connection bursts (1,000).
RESERVE = 0.2
#: Objects of any kind read a second on one connection, in connection rates (2,000 a second).
WORK_FACTOR = 4.0
#: The share of a link's budget kept for light messages, and how many new messages at once
#: (then ``origin_rate`` a second) a connection may bring and still be light.
LIGHT_SHARE = 0.2
LIGHT_BURST = 50.0
#: A new connection's own tokens when its host's spare is spent: its hello is heard at once.
#: (Each reconnection gains this many: a flooder reconnecting 200 times a second, 200.)
MIN_START = 1.0


@dataclass(frozen=True)
class FloodConfig:
    origin_rate: float = 20.0  # new messages a second of one Addr on one connection
    origin_burst: float = 500.0  # ... of which this many at once
    conn_rate: float = 500.0  # messages a second on one connection (not copies), all origins
    conn_burst: float = 5000.0  # ... at once; also the spare a host's connections share
    conn_start: float = 100.0  # ... of which a new connection has this many of its own
    penalty_limit: float = 100.0  # points before a connection is cut
    penalty_forgive: float = 1.0  # points forgiven a second
    blacklist_for: float = 600.0  # seconds

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) < 0:
                raise ValueError(f"{f.name} must not be negative")
        for name in ("penalty_limit", "origin_burst", "conn_burst"):  # a bucket under 1
            if getattr(self, name) < 1:  # never has a token to give
                raise ValueError(f"{name} must be at least 1")


@dataclass
class FloodStats:
    over_origin: int = 0  # new messages dropped: their connection's budget for the origin
    over_connection: int = 0  # objects dropped: their connection was over its budget
    penalties: int = 0
    cut: int = 0  # connections closed for running out of credit
    refused: int = 0  # connections refused as from a blacklisted host


class FloodCut(Exception):
    """The remote is at fault: close this connection (``entry`` says which host is
    blacklisted).  ``refused``: that host was blacklisted already (a shared host's flooder
    came back): the node logs it quietly."""

    def __init__(self, reason: str, entry: Entry, *, refused: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.entry = entry
        self.refused = refused


class OwnLimit(ValueError):
    """We are about to send faster than our peers accept from one origin."""


class Connection:
    """Flood-control state of one incoming connection."""

    __slots__ = (
        "_control",
        "bucket",
        "claims",
        "host",
        "kinds",
        "lightness",
        "origins",
        "penalty",
        "points",
        "remote",
        "reserve",
        "spare",
        "work",
    )

    def __init__(self, control: FloodControl, remote: str, host: str, now: float) -> None:
        cfg = control.config
        self._control = control
        self.remote = remote
        self.host = host
        self.spare = control._spare(host, now)
        start = min(cfg.conn_start, cfg.conn_burst)
        given = max(self.spare.take_up_to(start, now), min(MIN_START, start))
        self.bucket = TokenBucket(cfg.conn_rate, cfg.conn_burst, now)
        self.bucket.tokens = given
        self.reserve = cfg.conn_burst * RESERVE  # of the spare, past its own bucket
        self.lightness = TokenBucket(cfg.origin_rate, LIGHT_BURST, now)
        work = cfg.conn_rate * WORK_FACTOR
        self.work = TokenBucket(work, work, now)
        self.work.tokens = work / 5
        self.penalty = TokenBucket(cfg.penalty_forgive, cfg.penalty_limit, now)
        self.origins: dict[str, TokenBucket] = {}
        self.kinds: dict[str, int] = {}  # what the points were for -> how many
        self.claims: dict[str, int] = {}  # the Addrs the penalised messages claimed -> how many
        self.points = 0

    def pace(self, now: float) -> float:
        """Take a work token for the next object: 0.0, or the seconds to wait (stop reading)
        before asking again."""
        work = self.work
        if work.take(now):
            return 0.0
        return max(work.wait(now), 1e-3)

    def count(self, now: float, claims: str | None = None) -> bool:
        """Count an object that is not a duplicate (``claims``: its ``Addr``, if it has one):
        True to go on with it, False to drop it.  Raises ``FloodCut`` when the connection must
        be closed."""
        if self.bucket.take(now):
            return True
        return self._control._over_own(self, now, claims)

    def admit(self, addr: str, now: float) -> bool:
        """Count a new message of origin ``addr``: True to accept it, False to drop it (this
        connection's budget for ``addr`` is spent).  Never a penalty."""
        if len(addr) > MAX_ORIGIN_CHARS:
            addr = addr[:MAX_ORIGIN_CHARS]
        origin = self.origins.get(addr)
        if origin is None:
            origin = self._new_origin(addr, now)
        if origin.take(now):
            return True
        self._control.stats.over_origin += 1
        return False

    def light(self, now: float) -> bool:
        """Count a message accepted for relaying: True while the connection brings no more
        than one person types (its messages may use a link's light share)."""
        return self.lightness.take(now)

    def penalise(
        self, now: float, kind: str = "invalid messages", claims: str | None = None
    ) -> None:
        """Count an invalid message; raises ``FloodCut`` when the credit is gone."""
        self._control._penalise(self, now, kind, claims)

    def _new_origin(self, addr: str, now: float) -> TokenBucket:
        if len(self.origins) >= MAX_ORIGINS:
            self.origins = _keep_emptiest(self.origins, now, MAX_ORIGINS // 2)
        cfg = self._control.config
        bucket = self.origins[addr] = TokenBucket(cfg.origin_rate, cfg.origin_burst, now)
        return bucket


class FloodControl:
    """A node's flood control: host spares, the blacklist, our own limit, the counters."""

    def __init__(self, config: FloodConfig | None = None) -> None:
        self.config = cfg = config or FloodConfig()
        self.here = ""  # our own IP:PORT, once the node knows it (a shared host)
        self.hosts: dict[str, TokenBucket] = {}  # spare buckets by host key
        self.blacklist = Blacklist()
        self.stats = FloodStats()
        self._own = TokenBucket(cfg.origin_rate, cfg.origin_burst, 0.0)  # starts full

    # -- what the node asks ------------------------------------------------------------

    def open(self, remote: str, now: float, here: str | None = None) -> Connection | None:
        """State for a new incoming connection from ``remote`` (``IP:PORT``), or None to
        refuse it: its IP is blacklisted and not shared with other peers (``here`` is our
        own ``IP:PORT``, default ``self.here``)."""
        host = host_of(remote)
        if self.blacklist.host(host, now) is not None and not shared_host(
            host, self.here if here is None else here
        ):
            self.stats.refused += 1
            return None
        return Connection(self, remote, host, now)

    def blocked(self, addr: str, now: float) -> Entry | None:
        """The entry that keeps us from dialling ``addr``, if any: its host is blacklisted
        and not shared (never because messages claimed ``addr``)."""
        host = host_of(addr)
        entry = self.blacklist.host(host, now)
        if entry is None or shared_host(host, self.here):
            return None
        return entry

    def own(self, now: float) -> None:
        """Count a message we originate; raises ``OwnLimit`` when peers would drop it."""
        if not self._own.take(now):
            cfg = self.config
            raise OwnLimit(
                f"peers accept {cfg.origin_burst:g} messages at once, then"
                f" {cfg.origin_rate:g} a second, from one sender; wait {self._own.wait(now):.1f}s"
            )

    def link_budget(self, now: float) -> LinkBudget:
        return LinkBudget(self.config, now)

    def unblock(self, key: str) -> list[Entry]:
        """Lift the entries for a host IP (or an ``IP:PORT`` at it); returns them."""
        try:
            key = parse_hostport(key)[0]
        except AddressError:
            key = key.strip()
        return self.blacklist.remove(key)

    # -- the slow paths ------------------------------------------------------------------

    def _spare(self, host: str, now: float) -> TokenBucket:
        key = host_key(host)
        bucket = self.hosts.get(key)
        if bucket is None:
            if len(self.hosts) >= MAX_HOSTS:  # connections keep their bucket regardless
                self.hosts = _keep_emptiest(self.hosts, now, MAX_HOSTS // 2)
            cfg = self.config
            bucket = self.hosts[key] = TokenBucket(cfg.conn_rate * SPARE_RATE, cfg.conn_burst, now)
        return bucket

    def _over_own(self, conn: Connection, now: float, claims: str | None) -> bool:
        if conn.reserve >= 1:
            conn.reserve -= 1
            if conn.spare.take(now):
                return True
            self.stats.over_connection += 1
            return False  # the spare is spent, by others too: excused
        self.stats.over_connection += 1
        self._penalise(conn, now, "messages over the connection limit", claims)
        return False

    def _penalise(self, conn: Connection, now: float, kind: str, claims: str | None) -> None:
        self.stats.penalties += 1
        conn.points += 1
        conn.kinds[kind] = conn.kinds.get(kind, 0) + 1
        if claims is not None and (claims in conn.claims or len(conn.claims) < MAX_CLAIMS):
            claims = claims[:MAX_ORIGIN_CHARS]
            conn.claims[claims] = conn.claims.get(claims, 0) + 1
        if conn.penalty.take(now):
            return
        raise self._cut(conn, now)

    def _cut(self, conn: Connection, now: float) -> FloodCut:
        kinds = sorted(conn.kinds.items(), key=lambda item: -item[1])
        reason = ", ".join(f"{n} {kind}" for kind, n in kinds)
        if conn.claims:  # what the flood said it was: told, never blacklisted
            addr, n = max(conn.claims.items(), key=lambda item: item[1])
            if 2 * n >= conn.points:
                reason += f" (claiming to be from {addr}: anyone can write that)"
        again = self.blacklist.host(conn.host, now) is not None
        entry = Entry(conn.host, None, now, now + self.config.blacklist_for, reason)
        self.blacklist.add(entry)
        self.stats.cut += 1
        text = f"flood control: {reason}; blacklisted host {conn.host}"
        text += f" for {self.config.blacklist_for:.0f}s"
        if shared_host(conn.host, self.here):
            text += " (shared by the peers on it: its connections are still accepted)"
        return FloodCut(text, entry, refused=again)


class LinkBudget:
    """What one outgoing link may send: what a receiver's new connection accepts with the
    same configuration (its start and reserve at once, then ``conn_rate``), so that relaying
    a flood that entered on several connections never gets us cut off; ``LIGHT_SHARE`` of
    it only for light messages."""

    __slots__ = ("any", "light")

    def __init__(self, cfg: FloodConfig, now: float) -> None:
        rate, burst = cfg.conn_rate, cfg.conn_start + cfg.conn_burst * RESERVE
        self.light = TokenBucket(rate * LIGHT_SHARE, burst * LIGHT_SHARE, now)
        self.any = TokenBucket(rate * (1 - LIGHT_SHARE), burst * (1 - LIGHT_SHARE), now)

    def take(self, now: float, light: bool) -> bool:
        """Spend one message's worth; False: drop it for this link."""
        return (light and self.light.take(now)) or self.any.take(now)


def _keep_emptiest(
    buckets: dict[str, TokenBucket], now: float, keep: int
) -> dict[str, TokenBucket]:
    """The ``keep`` buckets furthest from full (forgetting a full one changes nothing)."""
    levels = [(b.level(now), key) for key, b in buckets.items() if not b.full(now)]
    levels.sort()
    return {key: buckets[key] for _, key in levels[:keep]}


__all__ = [
    "LIGHT_BURST",
    "LIGHT_SHARE",
    "MAX_HOSTS",
    "MAX_ORIGINS",
    "MAX_ORIGIN_CHARS",
    "MIN_START",
    "RESERVE",
    "WORK_FACTOR",
    "Blacklist",
    "Connection",
    "Entry",
    "FloodConfig",
    "FloodControl",
    "FloodCut",
    "FloodStats",
    "LinkBudget",
    "OwnLimit",
]
