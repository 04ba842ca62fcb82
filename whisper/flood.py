"""Flood control (PROTOCOL.md §7.4, extension 12): rate limits, penalties, blacklist.  Pure state.

Rules:
- Only *new* messages count: those that passed the seen, hash and freshness checks (§5.1
  steps 1-4).  Each takes a token from its connection's bucket (all origins; ``conn_rate``,
  ``conn_burst``) and one from its origin's bucket (by ``Addr``, shared by every connection;
  ``origin_rate``, ``origin_burst``).  A message over either limit is dropped: the node does
  not display it, relay it or mark it seen.
- Over the origin limit, a connection is blamed only once it has also used up its own *relay
  allowance* for that origin (per connection and origin: ``relay_allowance`` times the origin
  limit).  A conforming relay never delivers more of one origin than the origin limit (it
  drops the excess itself), so it is never blamed; the connection a flood enters on is.
- Blame, each message over the connection limit and each invalid message (hash mismatch,
  wrong types, outside the timestamp window) cost one penalty point from a credit of
  ``penalty_limit`` points that refills at ``penalty_forgive`` points a second.  When the
  credit is gone, ``FloodCut`` is raised to the node, which closes the connection.  Its host
  IP is blacklisted for ``blacklist_for`` seconds, and so is the one origin ``Addr`` that
  earned at least half of its points, if there is one.
- A blacklisted ``Addr`` is not dialled.  A new connection from a blacklisted IP is refused,
  unless that IP is shared by many peers (loopback, or our own IP), where the IP cannot tell
  the flooder from its neighbours.  There, a connection opened while an ``Addr`` is
  blacklisted gets no relay allowance for that ``Addr`` (its allowance starts empty and
  fills as usual), so flooding again is cut after ``penalty_limit`` messages over the limit;
  a relay that forwards the origin within its limit is not.  Messages of a blacklisted
  ``Addr`` are otherwise limited like any origin's (``Addr`` is not authenticated: dropping
  them all would let anyone silence a peer by flooding under its address).
- Time is passed in (``now``: ``trio.current_time()`` in the node).  ``Connection.admit`` is
  on the hot path: in the common case two bucket takes and one dict lookup.
- State is bounded: at most ``max_origins`` origin buckets (refilled ones are forgotten
  first: a refilled bucket is the same as a new one), ``MAX_ALLOWANCES`` per connection, and
  an origin is named by at most ``MAX_ORIGIN_CHARS`` of its ``Addr``.
"""

from __future__ import annotations

import heapq
import ipaddress
from dataclasses import dataclass, fields

from .addr import AddressError, dialable, format_hostport, parse_hostport
from .ratelimit import TokenBucket

MAX_ALLOWANCES = 1024
#: An origin is its ``Addr`` cut to this many characters (``IP:PORT`` and even a host name
#: with a port are shorter): ``Addr`` is any string a peer writes, and origins are kept.
MAX_ORIGIN_CHARS = 320


@dataclass(frozen=True)
class FloodConfig:
    origin_rate: float = 20.0  # new messages a second from one Addr
    origin_burst: float = 500.0  # ... of which this many at once
    conn_rate: float = 500.0  # new messages a second on one connection, all origins
    conn_burst: float = 5000.0
    penalty_limit: float = 100.0  # points before a connection is cut
    penalty_forgive: float = 1.0  # points forgiven a second
    blacklist_for: float = 600.0  # seconds
    relay_allowance: float = 2.0  # times the origin limit a connection may carry unblamed
    max_origins: int = 100_000

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) < 0:
                raise ValueError(f"{f.name} must not be negative")
        for name in ("penalty_limit", "origin_burst", "conn_burst"):  # a bucket under 1
            if getattr(self, name) < 1:  # never has a token to give
                raise ValueError(f"{name} must be at least 1")


@dataclass
class FloodStats:
    over_origin: int = 0  # new messages dropped: their origin was over its limit
    over_connection: int = 0  # ... their connection was over its limit
    excused: int = 0  # over the origin limit, within the connection's relay allowance
    penalties: int = 0
    cut: int = 0  # connections closed for running out of credit
    refused: int = 0  # connections refused or closed as a blacklisted peer


@dataclass(slots=True)
class Entry:
    """One blacklisting: the host of a connection that was cut and the origin it flooded."""

    host: str
    addr: str | None
    since: float
    until: float
    reason: str

    def describe(self, now: float) -> str:
        who = self.addr or f"host {self.host}"
        via = f" (from {self.host})" if self.addr else ""
        return f"{who}{via}: {self.reason}; {max(0.0, self.until - now):.0f}s left"


class FloodCut(Exception):
    """The remote is at fault: close this connection (``entry`` says who is blacklisted).
    ``refused``: the flooder was blacklisted already (it came back on a shared host)."""

    def __init__(self, reason: str, entry: Entry, *, refused: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.entry = entry
        self.refused = refused

    @property
    def addr(self) -> str | None:
        return self.entry.addr


class OwnLimit(ValueError):
    """We are about to send faster than our peers accept from one origin."""


_Key = tuple[str, str | None]  # (host, Addr): one entry each


class Blacklist:
    """Entries with an expiry; looked up by origin ``Addr`` and by host IP.

    Adding or expiring an entry costs O(log n): entries are indexed by key, ``Addr`` and host,
    and their expiry times kept in a heap (an entry replaced or lifted stays in the heap until
    it comes to the top, and the heap is rebuilt once it holds twice as many as are kept)."""

    def __init__(self) -> None:
        self._entries: dict[_Key, Entry] = {}  # in the order added
        self._addrs: dict[str, dict[_Key, Entry]] = {}  # the last one added counts
        self._hosts: dict[str, dict[_Key, Entry]] = {}
        self._expiry: list[tuple[float, int, _Key, Entry]] = []  # a heap
        self._added = 0
        self._next_expiry = float("inf")

    def add(self, entry: Entry) -> None:
        """Add an entry, replacing one for the same host and ``Addr``."""
        key = (entry.host, entry.addr)
        old = self._entries.get(key)
        if old is not None:
            self._drop(key, old)
        self._entries[key] = entry
        if entry.addr:
            self._addrs.setdefault(entry.addr, {})[key] = entry
        self._hosts.setdefault(entry.host, {})[key] = entry
        self._added += 1
        heapq.heappush(self._expiry, (entry.until, self._added, key, entry))
        if len(self._expiry) > 2 * len(self._entries) + 16:
            self._expiry = [(e.until, n, k, e) for n, (k, e) in enumerate(self._entries.items())]
            heapq.heapify(self._expiry)
        self._next_expiry = self._expiry[0][0]

    def addr(self, addr: str, now: float) -> Entry | None:
        if now >= self._next_expiry:
            self.expire(now)
        return self._latest(self._addrs.get(addr))

    def host(self, host: str, now: float) -> Entry | None:
        if now >= self._next_expiry:
            self.expire(now)
        return self._latest(self._hosts.get(host))

    def any_addr(self, now: float) -> bool:
        if now >= self._next_expiry:
            self.expire(now)
        return bool(self._addrs)

    def entries(self, now: float) -> list[Entry]:
        self.expire(now)
        return list(self._entries.values())

    def expire(self, now: float) -> None:
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            _, _, key, entry = heapq.heappop(expiry)
            if self._entries.get(key) is entry:  # else replaced or lifted already
                self._drop(key, entry)
        self._next_expiry = expiry[0][0] if expiry else float("inf")

    def remove(self, key: str) -> list[Entry]:
        """Lift every entry for ``key``: an ``Addr``, or a host IP (as ``/blacklist`` shows)."""
        gone = {**self._addrs.get(key, {}), **self._hosts.get(key, {})}
        for k, entry in gone.items():
            self._drop(k, entry)
        return list(gone.values())

    def _drop(self, key: _Key, entry: Entry) -> None:
        del self._entries[key]
        if entry.addr:
            self._unindex(self._addrs, entry.addr, key)
        self._unindex(self._hosts, entry.host, key)

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _latest(entries: dict[_Key, Entry] | None) -> Entry | None:
        return next(reversed(entries.values())) if entries else None

    @staticmethod
    def _unindex(index: dict[str, dict[_Key, Entry]], name: str, key: _Key) -> None:
        same = index[name]
        del same[key]
        if not same:
            del index[name]


class Connection:
    """Flood-control state of one incoming connection."""

    __slots__ = (
        "_control",
        "_origins",
        "allowances",
        "blame",
        "bucket",
        "host",
        "kinds",
        "penalty",
        "points",
        "probation",
        "remote",
    )

    def __init__(self, control: FloodControl, remote: str, host: str, now: float) -> None:
        cfg = control.config
        self._control = control
        self._origins = control.origins
        self.remote = remote
        self.host = host
        self.bucket = TokenBucket(cfg.conn_rate, cfg.conn_burst, now)
        self.penalty = TokenBucket(cfg.penalty_forgive, cfg.penalty_limit, now)
        self.probation = control.blacklist.any_addr(now)
        self.allowances: dict[str, TokenBucket] = {}
        self.blame: dict[str, int] = {}  # origin Addr -> penalty points it earned us
        self.kinds: dict[str, int] = {}  # what the points were for -> how many
        self.points = 0

    def admit(self, addr: str, now: float) -> bool:
        """Count a new message of origin ``addr``: True to accept it, False to drop it.
        Raises ``FloodCut`` when the connection must be closed."""
        if len(addr) > MAX_ORIGIN_CHARS:
            addr = addr[:MAX_ORIGIN_CHARS]
        if not self.bucket.take(now):
            return self._control._over_connection(self, addr, now)
        origin = self._origins.get(addr)
        if origin is None:
            origin = self._control._new_origin(addr, now)
        if origin.take(now):
            return True
        return self._control._over_origin(self, addr, now)

    def penalise(self, now: float, kind: str = "invalid messages") -> None:
        """Count an invalid message; raises ``FloodCut`` when the credit is gone."""
        self._control._penalise(self, None, now, kind)


class FloodControl:
    """A node's flood control: origin buckets, the blacklist, and connections' states."""

    def __init__(self, config: FloodConfig | None = None) -> None:
        self.config = config or FloodConfig()
        self.origins: dict[str, TokenBucket] = {}
        self.blacklist = Blacklist()
        self.stats = FloodStats()

    # -- what the node asks ------------------------------------------------------------

    def open(self, remote: str, now: float, here: str = "") -> Connection | None:
        """State for a new incoming connection from ``remote`` (``IP:PORT``), or None to
        refuse it: its IP is blacklisted and not shared with other peers (``here`` is our
        own ``IP:PORT``)."""
        host = host_of(remote)
        if self.blacklist.host(host, now) is not None and not shared_host(host, here):
            self.stats.refused += 1
            return None
        return Connection(self, remote, host, now)

    def blocked(self, addr: str, now: float) -> Entry | None:
        """The entry that keeps us from dialling ``addr``, if any."""
        return self.blacklist.addr(addr, now)

    def own(self, addr: str, now: float) -> None:
        """Count a message we originate; raises ``OwnLimit`` when peers would drop it."""
        origin = self.origins.get(addr) or self._new_origin(addr, now)
        if not origin.take(now):
            cfg = self.config
            raise OwnLimit(
                f"peers accept {cfg.origin_burst:g} messages at once, then"
                f" {cfg.origin_rate:g} a second, from one sender; wait {origin.wait(now):.1f}s"
            )

    def unblock(self, key: str) -> list[Entry]:
        """Lift the entries for an ``Addr`` or host IP; returns them."""
        try:
            key = format_hostport(*parse_hostport(key))
        except AddressError:
            key = key.strip()
        return self.blacklist.remove(key)

    # -- the slow paths of Connection.admit ---------------------------------------------

    def _new_origin(self, addr: str, now: float) -> TokenBucket:
        if len(self.origins) >= self.config.max_origins:
            self._forget_origins(now)
        bucket = self.origins[addr] = TokenBucket(
            self.config.origin_rate, self.config.origin_burst, now
        )
        return bucket

    def _forget_origins(self, now: float) -> None:
        """Drop refilled buckets; if that is not enough, the oldest quarter."""
        origins = self.origins  # changed in place: connections hold a reference to it
        for addr in [a for a, b in origins.items() if b.full(now)]:
            del origins[addr]
        excess = len(origins) - self.config.max_origins * 3 // 4
        if excess > 0:
            for addr in list(origins)[:excess]:
                del origins[addr]

    def _over_connection(self, conn: Connection, addr: str, now: float) -> bool:
        self.stats.over_connection += 1
        self._penalise(conn, addr, now, "messages over the connection limit")
        return False

    def _over_origin(self, conn: Connection, addr: str, now: float) -> bool:
        self.stats.over_origin += 1
        allowance = conn.allowances.get(addr)
        if allowance is None:
            if len(conn.allowances) >= MAX_ALLOWANCES:
                conn.allowances = {a: b for a, b in conn.allowances.items() if not b.full(now)}
            cfg = self.config
            k = cfg.relay_allowance
            allowance = TokenBucket(k * cfg.origin_rate, k * cfg.origin_burst, now)
            if conn.probation and self.blacklist.addr(addr, now) is not None:
                allowance.tokens = 0.0  # it may be the flooder back: no allowance up front
            conn.allowances[addr] = allowance
        if allowance.take(now):
            self.stats.excused += 1
            return False
        self._penalise(conn, addr, now, f"messages of {addr} over its limit")
        return False

    def _penalise(self, conn: Connection, addr: str | None, now: float, kind: str) -> None:
        self.stats.penalties += 1
        conn.points += 1
        conn.kinds[kind] = conn.kinds.get(kind, 0) + 1
        if addr is not None:
            conn.blame[addr] = conn.blame.get(addr, 0) + 1
        if conn.penalty.take(now):
            return
        raise self._cut(conn, now)

    def _cut(self, conn: Connection, now: float) -> FloodCut:
        flooder = None
        if conn.blame:
            top, points = max(conn.blame.items(), key=lambda item: item[1])
            if 2 * points >= conn.points:
                flooder = dialable(top) or top  # as the node dials it: "1.2.3.4:05" is 1.2.3.4:5
        kinds = sorted(conn.kinds.items(), key=lambda item: -item[1])
        reason = ", ".join(f"{n} {kind}" for kind, n in kinds)
        again = flooder is not None and self.blacklist.addr(flooder, now) is not None
        entry = Entry(conn.host, flooder, now, now + self.config.blacklist_for, reason)
        self.blacklist.add(entry)
        self.stats.cut += 1
        who = flooder or f"host {conn.host}"
        lasting = f"{self.config.blacklist_for:.0f}s"
        text = f"flood control: {reason}; blacklisted {who} for {lasting}"
        return FloodCut(text, entry, refused=again)


def host_of(remote: str) -> str:
    """The IP of an ``IP:PORT`` (``[v6]:PORT`` too); the string itself if it has no port."""
    try:
        return parse_hostport(remote)[0]
    except AddressError:
        return remote


def shared_host(host: str, here: str = "") -> bool:
    """True for an IP that many peers may share: loopback, or our own."""
    if here and host == host_of(here):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


__all__ = [
    "MAX_ORIGIN_CHARS",
    "Blacklist",
    "Connection",
    "Entry",
    "FloodConfig",
    "FloodControl",
    "FloodCut",
    "FloodStats",
    "OwnLimit",
]
