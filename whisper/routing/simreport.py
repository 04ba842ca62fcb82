"""What a simulated run measured: the numbers ``bench/bench_overlay.py`` prints and the
tests assert, computed from a ``SimNet`` after it ran.

Rules:
- Delivery counts peers alive at the end of the run that were alive when the message was
  sent (the *survivors*); the origin is not counted.  ``within`` counts only copies that
  arrived that many seconds after sending; without it, any that arrived before the run ended.
- Duplicates per delivery: copies received of a message a peer already had, over the
  deliveries, for the given messages.
- Links per peer: distinct peers a live peer has a link with, either way; connections: its
  links opened plus links opened to it (one TCP connection each).
- Control traffic: payloads (and bytes) sent between two snapshots of the counters, per live
  peer per minute, split into membership (HyParView) and broadcast (Plumtree) kinds.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from . import wire
from .sim import Broadcast, SimNet

_MEMBERSHIP = {kind.__name__ for kind in wire.MEMBERSHIP}


def _survivors(net: SimNet, record: Broadcast) -> int:
    return sum(1 for peer, up in net.alive.items() if up and peer != record.origin)


def delivery(net: SimNet, msg_id: str, within: float | None = None) -> float:
    record = net.messages[msg_id]
    survivors = _survivors(net, record)
    if survivors == 0:
        return 1.0
    alive, limit = net.alive, record.sent + (within if within is not None else float("inf"))
    got = sum(1 for peer, (at, _) in record.got.items() if alive[peer] and at <= limit)
    return got / survivors


def last_arrival(net: SimNet, msg_id: str) -> tuple[float, int]:
    """(seconds, hops) to the last survivor the message reached."""
    record = net.messages[msg_id]
    arrivals = [v for p, v in record.got.items() if net.alive[p]]
    if not arrivals:
        return 0.0, 0
    return max(at for at, _ in arrivals) - record.sent, max(h for _, h in arrivals)


def duplicates(net: SimNet, ids: Sequence[str]) -> float:
    records = [net.messages[m] for m in ids]
    delivered = sum(len(r.got) for r in records)
    return sum(r.duplicates for r in records) / delivered if delivered else 0.0


def links(net: SimNet) -> tuple[list[int], list[int]]:
    """Per live peer: distinct linked peers, and TCP connections."""
    peers = net.living()
    return (
        [len(net.out[p] | net.into[p]) for p in peers],
        [len(net.out[p]) + len(net.into[p]) for p in peers],
    )


@dataclass(frozen=True)
class Counters:
    at: float
    controls: dict[str, int]
    control_bytes: int
    copies: int

    @classmethod
    def of(cls, net: SimNet) -> Counters:
        return cls(net.now, dict(net.controls), net.control_bytes, net.copies)


def control_rate(net: SimNet, since: Counters) -> dict[str, float]:
    """Controls per live peer per minute since ``since``: membership, broadcast, bytes."""
    now = Counters.of(net)
    minutes = (now.at - since.at) / 60 or 1.0
    peers = len(net.living()) or 1
    delta = {k: v - since.controls.get(k, 0) for k, v in now.controls.items()}
    membership = sum(v for k, v in delta.items() if k in _MEMBERSHIP)
    broadcast = sum(v for k, v in delta.items() if k not in _MEMBERSHIP)
    scale = 1 / (peers * minutes)
    return {
        "membership": membership * scale,
        "broadcast": broadcast * scale,
        "bytes": (now.control_bytes - since.control_bytes) * scale,
    }


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def recovered_after(net: SimNet, ids: Sequence[str], crash_at: float, within: float) -> float:
    """Seconds after the crash from which every message reached every survivor within
    ``within`` seconds (inf if the last one did not)."""
    recovered = float("inf")
    for msg_id in reversed(ids):
        if delivery(net, msg_id, within) < 1.0:
            break
        recovered = net.messages[msg_id].sent - crash_at
    return max(0.0, recovered)
