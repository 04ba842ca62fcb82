"""What front ends may ask the engine: snapshots, plain values taken at one moment.

Rules:
- A snapshot is a copy: holding one pins nothing in the engine and changing the engine
  later does not change it.  Times are ages in seconds, not clock readings, so a front end
  needs no clock of the engine's.
- Strings are as the peers wrote them (an error may quote one): front ends clean them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..flood import FloodControl
from ..peers import PeerTable


@dataclass
class Stats:
    received: int = 0  # objects decoded
    delivered: int = 0  # new chat messages accepted from the network
    duplicates: int = 0
    ignored: int = 0  # payloads without Body that no Control stage took
    invalid: int = 0  # wrong types, hash mismatch, outside the window, forged, by a Check
    forged: int = 0  # ... of them: our own Addr, but we never sent it
    forgotten: int = 0  # older than our seen cache remembers, inside the configured window
    over_limit: int = 0  # objects dropped by flood control (connection or origin budget)
    paced: int = 0  # times a connection was not read for a while (out of work tokens)
    held_back: int = 0  # messages not sent to a link: over what a receiver accepts (flood.py)
    violations: int = 0  # connections dropped for malformed input
    over_budget: int = 0  # connections dropped: the receive budget was spent
    sent: int = 0  # messages we originated


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """One connection: an outgoing link (``outgoing``) or an incoming connection."""

    addr: str
    outgoing: bool
    state: str  # "connecting", "connected", "waiting to retry"
    seconds: float  # in that state
    failures: int = 0  # consecutive, of an outgoing link
    last_error: str = ""

    @property
    def connected(self) -> bool:
        return self.state == "connected"


@dataclass(frozen=True, slots=True)
class BlacklistEntry:
    """Someone flood control cut off: a host IP and, if one origin flooded, its ``Addr``."""

    host: str
    addr: str | None
    reason: str
    seconds_left: float

    @property
    def text(self) -> str:
        who = self.addr or f"host {self.host}"
        via = f" (from {self.host})" if self.addr else ""
        return f"{who}{via}: {self.reason}; {self.seconds_left:.0f}s left"


def peer_infos(table: PeerTable, now: float) -> list[PeerInfo]:
    """Outgoing links first, then incoming connections, each in the order they were made."""
    rows = [
        PeerInfo(p.addr, True, p.state.value, now - p.since, p.failures, p.last_error)
        for p in table.outgoing.values()
    ]
    rows += [PeerInfo(p.addr, False, p.state.value, now - p.since) for p in table.incoming.values()]
    return rows


def blacklist_entries(flood: FloodControl, now: float) -> list[BlacklistEntry]:
    return [
        BlacklistEntry(e.host, e.addr, e.reason, max(0.0, e.until - now))
        for e in flood.blacklist.entries(now)
    ]
