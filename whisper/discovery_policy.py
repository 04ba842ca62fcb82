"""UDP discovery, the pure part: the datagram format, where we may speak, and the rates.

No sockets, no trio, no clock: ``discovery.py`` feeds this module what it sees and the time.

Rules (PROTOCOL.md §7.1 is normative):

- A datagram is the bare ASCII ``IP:PORT`` of a peer's TCP listening address, as the Go
  reference peer sends it: an IPv4 dotted quad without leading zeros, a colon and a decimal
  port 1-65535 without leading zeros.  Surrounding ASCII whitespace is tolerated; anything
  else (longer than ``MAX_DATAGRAM`` bytes, names, IPv6, 0.0.0.0, multicast, broadcast) is
  garbage and is ignored.
- The *scope* is the interface that owns the address we are bound to (bound to the wildcard:
  the address we advertise) and that address's network.  We announce only to that
  interface's directed broadcast address (configured, or the network's on an interface with
  the BROADCAST flag), never to 255.255.255.255, and announce nothing at
  all when bound to loopback: peers on one host bound to 127.0.0.1 (tests, the conformance
  suite) are not joined behind their users' backs, and nothing can leave the machine.
- A heard address is dialled only if it and the datagram's source are inside the scope
  (loopback only from loopback), it is not our own, it was not handed to the dialler within
  ``REDIAL_AFTER`` seconds, and the dial token bucket (``DIAL_RATE``/s, burst ``DIAL_BURST``)
  has a token.  At most ``MAX_REMEMBERED`` addresses are remembered.
- We announce our own address at start and every ``ANNOUNCE_INTERVAL`` seconds (+-10%), plus
  up to ``MAX_ON_BEHALF`` addresses of peers we are connected to (rotating through them).
  Hearing a new address makes us announce our own address once more, at most once per
  ``MIN_ANNOUNCE_GAP`` seconds, so that a newcomer learns of us without waiting a period.
"""

from __future__ import annotations

import enum
import ipaddress
import random
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import NamedTuple

DISCOVERY_PORT = 5555
ANNOUNCE_INTERVAL = 30.0
ANNOUNCE_JITTER = 0.1
MIN_ANNOUNCE_GAP = 1.0
MAX_ON_BEHALF = 8
MAX_DATAGRAM = 64
DIAL_RATE = 1.0
DIAL_BURST = 8
REDIAL_AFTER = 60.0
MAX_REMEMBERED = 1024

LIMITED_BROADCAST = IPv4Address("255.255.255.255")
_WHITESPACE = b" \t\r\n"
_OCTET = rb"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_DATAGRAM = re.compile(rb"(%s(?:\.%s){3}):([1-9][0-9]{0,4})" % (_OCTET, _OCTET))


@dataclass(frozen=True)
class DiscoveryConfig:
    """``Config.discovery`` (None: no discovery): the UDP port, and how often we announce."""

    port: int = DISCOVERY_PORT
    interval: float = ANNOUNCE_INTERVAL


class Endpoint(NamedTuple):
    ip: IPv4Address
    port: int

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


def parse_datagram(data: bytes) -> Endpoint | None:
    """The ``IP:PORT`` a datagram announces, or None if it is garbage."""
    if len(data) > MAX_DATAGRAM:
        return None
    match = _DATAGRAM.fullmatch(data.strip(_WHITESPACE))
    if match is None:
        return None
    ip, port = IPv4Address(match[1].decode("ascii")), int(match[2])
    if port > 65535 or ip.is_unspecified or ip.is_multicast or ip == LIMITED_BROADCAST:
        return None
    return Endpoint(ip, port)


def parse_endpoint(text: str) -> Endpoint | None:
    """An ``IP:PORT`` string (our own address, a peer's) as an Endpoint, if it is IPv4."""
    return parse_datagram(text.encode("ascii", "replace"))


def format_datagram(endpoint: Endpoint) -> bytes:
    return str(endpoint).encode("ascii")


# -- where we speak ----------------------------------------------------------------------


@dataclass(frozen=True)
class InterfaceAddress:
    """One IPv4 address of a network interface, as the OS lists it."""

    interface: str
    ip: IPv4Address
    netmask: IPv4Address
    broadcast: IPv4Address | None  # as configured; often unset (``ip addr add`` sets none)
    can_broadcast: bool = False  # the interface's BROADCAST flag


@dataclass(frozen=True)
class Scope:
    interface: str
    ip: IPv4Address  # our address on it: the source of our announcements
    network: IPv4Network
    target: IPv4Address | None  # the directed broadcast address; None: we announce nothing

    @property
    def loopback(self) -> bool:
        return self.ip.is_loopback

    def admits(self, ip: IPv4Address) -> bool:
        """Whether ``ip`` is on our segment: a peer we may hear from and dial."""
        if ip.is_loopback != self.loopback or ip not in self.network:
            return False
        if self.network.prefixlen <= 30:
            return ip not in (self.network.network_address, self.network.broadcast_address)
        return True


def choose_scope(
    bound: str, advertised: str, addresses: Iterable[InterfaceAddress]
) -> Scope | None:
    """The scope of a peer bound to ``bound`` that advertises ``advertised`` (IPs, no port).

    None when the address is not IPv4 or no interface owns it: then discovery stays off.
    """
    wildcard = bound in ("", "0.0.0.0", "::")
    try:
        ip = ipaddress.ip_address(advertised if wildcard else bound)
    except ValueError:
        return None
    if not isinstance(ip, IPv4Address) or ip.is_unspecified or ip.is_multicast:
        return None
    for entry in addresses:
        if entry.ip == ip:
            network = IPv4Network(f"{ip}/{entry.netmask}", strict=False)
            return Scope(entry.interface, ip, network, _target(ip, network, entry))
    return None


def _target(ip: IPv4Address, network: IPv4Network, entry: InterfaceAddress) -> IPv4Address | None:
    """The configured broadcast address if sane, else (on a broadcast interface) the network's.

    Linux routes the network's broadcast address as broadcast on the interface for every
    primary address with a prefix shorter than /31, configured or not.  (With none configured
    some platforms list our own address as the broadcast address.)
    """
    if ip.is_loopback or not 1 <= network.prefixlen <= 30:
        return None
    candidates = [entry.broadcast] if entry.broadcast is not None else []
    if entry.can_broadcast:
        candidates.append(network.broadcast_address)
    for broadcast in candidates:
        if broadcast not in (LIMITED_BROADCAST, ip) and broadcast in network:
            return None if broadcast.is_loopback else broadcast
    return None


class UnsafeDestination(Exception):
    """A bug guard: we were about to send somewhere the rules forbid."""


def check_destination(scope: Scope, destination: IPv4Address) -> None:
    """Raise unless ``destination`` is the scope's directed broadcast address."""
    if (
        scope.loopback
        or destination.is_loopback
        or scope.target is None
        or destination != scope.target
        or destination == LIMITED_BROADCAST
        or destination not in scope.network
    ):
        raise UnsafeDestination(f"refusing to send a discovery datagram to {destination}")


# -- what we hear --------------------------------------------------------------------------


def judge(data: bytes, source: str, scope: Scope, own: str) -> Endpoint | str:
    """The endpoint a datagram from ``source`` announces, or why we ignore it."""
    endpoint = parse_datagram(data)
    if endpoint is None:
        return f"garbage ({len(data)} bytes: {data[:MAX_DATAGRAM]!r})"
    try:
        source_ip = IPv4Address(source)
    except ValueError:
        return f"{endpoint} from a non-IPv4 source {source}"
    if not scope.admits(source_ip):
        return f"{endpoint} from {source}, outside {scope.network}"
    if not scope.admits(endpoint.ip):
        return f"{endpoint} is outside {scope.network}"
    if str(endpoint) == own:
        return "our own address"
    return endpoint


class Decision(enum.Enum):
    DIAL = "dial"
    RECENT = "handed to the dialler recently"
    RATE_LIMITED = "dial rate limit"


class DialPolicy:
    """Never the same address twice within ``redial_after``; a token bucket over all dials."""

    def __init__(
        self,
        *,
        rate: float = DIAL_RATE,
        burst: int = DIAL_BURST,
        redial_after: float = REDIAL_AFTER,
        remember: int = MAX_REMEMBERED,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.redial_after = redial_after
        self.remember = remember
        self._tokens = float(burst)
        self._refilled: float | None = None
        self._recent: OrderedDict[str, float] = OrderedDict()

    def decide(self, addr: str, now: float) -> Decision:
        """Whether to hand ``addr`` to the dialler now; DIAL is recorded as done."""
        seen = self._recent.get(addr)
        if seen is not None and now - seen < self.redial_after:
            return Decision.RECENT
        if self._refilled is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now
        if self._tokens < 1:
            return Decision.RATE_LIMITED
        self._tokens -= 1
        self._recent[addr] = now
        self._recent.move_to_end(addr)
        while len(self._recent) > self.remember:
            self._recent.popitem(last=False)
        return Decision.DIAL


# -- what we say ---------------------------------------------------------------------------


class Announcement(enum.Enum):
    ROUND = "own address and peers'"  # the periodic one, and the one at start
    OWN = "own address"  # after hearing a newcomer


class AnnounceSchedule:
    """When to announce: a round at start and every interval, and prompt replies."""

    def __init__(
        self,
        interval: float = ANNOUNCE_INTERVAL,
        *,
        min_gap: float = MIN_ANNOUNCE_GAP,
        jitter: float = ANNOUNCE_JITTER,
        rng: random.Random | None = None,
    ) -> None:
        self.interval = interval
        self.min_gap = min_gap
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._next_round = float("-inf")  # the first round is due at once
        self._last = float("-inf")
        self._reply = False
        self.rounds = 0

    def heard_new(self) -> None:
        self._reply = True

    def deadline(self) -> float:
        """The next time ``poll`` may return something (absent new ``heard_new`` calls)."""
        if self._reply:
            return min(self._next_round, self._last + self.min_gap)
        return self._next_round

    def poll(self, now: float) -> Announcement | None:
        if now >= self._next_round:
            spread = self._rng.uniform(1 - self.jitter, 1 + self.jitter)
            self._next_round = now + self.interval * spread
            self._last, self._reply = now, False
            self.rounds += 1
            return Announcement.ROUND
        if self._reply and now >= self._last + self.min_gap:
            self._last, self._reply = now, False
            return Announcement.OWN
        return None


def on_behalf(
    known: Sequence[str], scope: Scope, own: str, round_no: int, limit: int = MAX_ON_BEHALF
) -> list[Endpoint]:
    """Up to ``limit`` known peers to announce this round, rotating through all of them."""
    endpoints = sorted(
        {e for e in map(parse_endpoint, known) if e and scope.admits(e.ip) and str(e) != own}
    )
    if len(endpoints) <= limit:
        return endpoints
    start = (round_no * limit) % len(endpoints)
    return (endpoints + endpoints)[start : start + limit]
