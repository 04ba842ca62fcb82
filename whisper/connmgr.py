"""Connection slots: who gives way when every slot is taken (PROTOCOL.md §5.4).  Pure.

Rules:
- A *slot* is an incoming connection or an outgoing link.  Each records when it was opened
  and when it last *produced*: an incoming connection, when it last delivered a new valid
  message (one that passed §5.1 steps 1-4; duplicates, invalid and over-limit messages do
  not count); an outgoing link, when we last accepted a new valid message whose ``Addr`` is
  the link's address (from any connection).  Links are one-way: a listener that accepts and
  reads what we send proves nothing, so being up never counts as producing.
- A slot may give way (is *evictable*) only when it is not pinned (a link the user asked
  for), has had ``grace`` seconds since it opened (a newcomer gets time to say something),
  and has produced nothing for ``active_for`` seconds.  A slot that carries traffic is never
  evicted, so a full table of busy connections refuses newcomers.
- Of the evictable slots, the one that goes is: one that never produced before one that did;
  then one from the most crowded network (more slots in its /24 or /64: an attacker's
  connections come from few networks, honest peers' from many); then the one quiet longest
  (never produced: the oldest).
- Networks are IPv4 /24 and IPv6 /64 of public addresses (an IPv4-mapped IPv6 address is
  IPv4).  A private address (a LAN's: a workshop room puts every peer in one /24) and a host
  that is not an IP literal are their own network.  Costs are linear in the number of slots.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Collection
from typing import Protocol, TypeVar

DEFAULT_GRACE = 5.0
DEFAULT_ACTIVE_FOR = 60.0


class Slot(Protocol):
    @property
    def net(self) -> str: ...  # network(host of its IP:PORT), worked out once
    @property
    def opened(self) -> float: ...
    @property
    def produced(self) -> float | None: ...
    @property
    def pinned(self) -> bool: ...


S = TypeVar("S", bound=Slot)


def host_of(hostport: str) -> str:
    return hostport.rpartition(":")[0].strip("[]")


def network(host: str) -> str:
    """The /24 (IPv4) or /64 (IPv6) that public ``host`` is in, as ``1.2.3.0/24``; a
    private address is its own."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_global:
        return str(ip)
    if ip.version == 4:
        return f"{ipaddress.IPv4Address(int(ip) >> 8 << 8)}/24"
    return f"{ipaddress.IPv6Address(int(ip) >> 64 << 64)}/64"


def victim(slots: Collection[S], now: float, *, grace: float, active_for: float) -> S | None:
    """The slot to give way to a newcomer, or None when none may (``Rules``)."""
    opened_by, quiet_since = now - grace, now - active_for  # one pass, no calls: it is hot
    candidates = [
        s
        for s in slots
        if not s.pinned
        and s.opened <= opened_by
        and (s.produced is None or s.produced <= quiet_since)
    ]
    if not candidates:
        return None
    crowd = Counter(s.net for s in slots)

    def rank(s: S) -> tuple[bool, int, float]:
        quiet = s.opened if s.produced is None else s.produced
        return s.produced is not None, -crowd[s.net], quiet

    return min(candidates, key=rank)


def idle_for(slot: Slot, now: float) -> str:
    """How long ``slot`` has been quiet, for a log line."""
    if slot.produced is None:
        return f"nothing new in {now - slot.opened:.0f}s"
    return f"nothing new for {now - slot.produced:.0f}s"
