"""Overlay simulation: HyParView + Plumtree against today's full flood, N peers in one process.

What it measures (numbers only; nothing is asserted), on ``whisper.routing.sim.SimNet`` (a
discrete-event network, seeded latencies of 1-50 ms, no sockets, no sleeps):

1. **Stable**: ``--peers`` peers join one every 50 ms, each through a random earlier one;
   60 s later ``--warmup`` messages let the tree form, then ``--messages`` messages from
   random peers at ``--rate`` a second.  Delivery (min over messages), duplicates per
   delivery (after the warm-up), whole-message copies written per delivery, hops and
   seconds to the last peer (mean, p99), links per peer and TCP connections per peer (mean,
   max), control payloads per peer per minute (membership, broadcast) and control bytes.
2. **Crash**: the same network (same seed) has 30% (then, in another run, 50%) of its peers
   crash at once; messages follow at ``--rate`` for 60 s from random survivors.  Eventual
   delivery to the survivors (min over messages); the worst delivery within 1 s of sending,
   in 10 s buckets after the crash; seconds until every message reaches every survivor
   within 1 s again.
3. **Flood**: the same runs with today's routing (every message to every link, every
   author dialled) on a full mesh of the same peers (the mesh a flood network ends up with
   once everyone has spoken; building it by joins costs N^3 events, so it is set up
   directly).  Its 128-link cap is left out: with it no network beyond 129 peers is a mesh.
   A flood message costs N^2 events, so it sends ``--flood-messages`` only.
4. **Busy**: the stable run at ``--busy-rate`` messages a second (many concurrent messages:
   a first message from an author is routed by the shared default tree, later ones by the
   author's own tree), from random peers (nearly every message an author's first), then
   from ``--busy-senders`` regular senders (the warm-up gives each its tree).

Run ``.venv/bin/python bench/bench_overlay.py --help`` for options; 1,000 peers take about
two minutes on one core.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass

from whisper.routing.sim import FloodPeer, SimNet
from whisper.routing.simreport import (
    Counters,
    control_rate,
    delivery,
    duplicates,
    last_arrival,
    links,
    mean,
    percentile,
    recovered_after,
)

JOIN_EVERY = 0.05
SETTLE = 60.0
CRASH_WINDOW = 60.0
WITHIN = 1.0


@dataclass
class Args:
    peers: int
    seed: int
    rate: float
    busy_rate: float
    warmup: int
    messages: int
    flood_messages: int
    skip_flood: bool
    busy_senders: int


def build(args: Args, flood: bool) -> tuple[SimNet, float]:
    make = (lambda addr, rng: FloodPeer(addr)) if flood else None
    net = SimNet(args.seed, make)
    net.grow(args.peers, JOIN_EVERY)
    start = args.peers * JOIN_EVERY + SETTLE
    if flood:
        net.link_all()
    net.run(start)
    return net, start


def say(
    net: SimNet, start: float, count: int, rate: float, senders: list[str] | None = None
) -> list[str]:
    """``count`` messages at ``rate`` from random live peers (or from random ``senders``)."""
    pick = random.Random(start).choice
    return [net.say(start + i / rate, pick(senders) if senders else None) for i in range(count)]


def stable(args: Args, flood: bool, rate: float, senders: int = 0) -> dict[str, str]:
    net, start = build(args, flood)
    warm = 0 if flood else args.warmup
    count = args.flood_messages if flood else args.messages
    regulars = random.Random(args.seed).sample(net.living(), senders) if senders else None
    warmup = say(net, start, warm, rate, regulars)
    net.run(start + warm / rate + 5)
    begin = net.now
    before = Counters.of(net)
    ids = say(net, begin, count, rate, regulars)
    net.run(begin + count / rate + 10)
    traffic = control_rate(net, before)
    ends = [last_arrival(net, m) for m in ids]
    hops, seconds = [h for _, h in ends], [s for s, _ in ends]
    peers, conns = links(net)
    delivered = sum(len(net.messages[m].got) for m in ids)
    return {
        "routing": "flood" if flood else "overlay",
        "msgs": f"{len(ids)} @{rate:g}/s" + (f" from {senders}" if senders else ""),
        "delivery": f"{min(delivery(net, m) for m in ids):.4f}",
        "dup/deliv": f"{duplicates(net, ids):.4f}",
        "dup (warm-up)": f"{duplicates(net, warmup):.3f}" if warmup else "-",
        "copies/deliv": f"{(net.copies - before.copies) / delivered:.3f}",
        "hops last": f"{mean(hops):.1f} / {percentile(hops, 99)}",
        "s to last": f"{mean(seconds):.3f} / {percentile(seconds, 99):.3f}",
        "links/peer": f"{mean(peers):.1f} / {max(peers)}",
        "TCP/peer": f"{mean(conns):.1f} / {max(conns)}",
        "ctl/peer/min": f"{traffic['membership']:.1f} + {traffic['broadcast']:.1f}",
        "ctl B/peer/min": f"{traffic['bytes']:.0f}",
    }


def crash(args: Args, flood: bool, fraction: float) -> dict[str, str]:
    net, start = build(args, flood)
    if not flood:  # let the tree form first
        say(net, start, args.warmup, args.rate)
        net.run(start + args.warmup / args.rate + 5)
    at = net.now
    net.crash(at, fraction)
    rate = args.rate if not flood else args.flood_messages / 10
    count = round(CRASH_WINDOW * rate) if not flood else args.flood_messages
    ids = say(net, at, count, rate)
    net.run(at + count / rate + 10)
    buckets = []
    for lo in range(0, 60, 10):
        inside = [m for m in ids if lo <= net.messages[m].sent - at < lo + 10]
        if inside:
            buckets.append(f"{min(delivery(net, m, WITHIN) for m in inside):.3f}")
    ends = [last_arrival(net, m)[0] for m in ids]
    return {
        "routing": "flood" if flood else "overlay",
        "crashed": f"{fraction:.0%}",
        "survivors": str(len(net.living())),
        "delivery": f"{min(delivery(net, m) for m in ids):.4f}",
        "min within 1 s, per 10 s": " ".join(buckets),
        "100% in 1 s after": f"{recovered_after(net, ids, at, WITHIN):.1f} s",
        "s to last p99": f"{percentile(ends, 99):.2f}",
        "dup/deliv": f"{duplicates(net, ids):.4f}",
    }


def table(title: str, rows: list[dict[str, str]]) -> None:
    print(f"\n{title}")
    keys = list(rows[0])
    widths = [max(len(k), *(len(r[k]) for r in rows)) for k in keys]
    print("  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True)))
    for row in rows:
        print("  ".join(row[k].ljust(w) for k, w in zip(keys, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=2.0, help="messages a second")
    parser.add_argument("--busy-rate", type=float, default=10.0)
    parser.add_argument(
        "--busy-senders",
        type=int,
        default=20,
        help="busy again, with the messages from this many regular senders (0: skip)",
    )
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--messages", type=int, default=120)
    parser.add_argument("--flood-messages", type=int, default=4)
    parser.add_argument("--skip-flood", action="store_true")
    args = Args(**vars(parser.parse_args()))
    began = time.process_time()
    print(f"{args.peers} peers, seed {args.seed}; latency 1-50 ms; 'a / b' is mean / p99 or max")
    runs = [False] if args.skip_flood else [False, True]
    table("Stable network", [stable(args, flood, args.rate) for flood in runs])
    table(
        "Crash at once (messages from survivors for 60 s)",
        [crash(args, flood, fraction) for fraction in (0.3, 0.5) for flood in runs],
    )
    busy = [stable(args, False, args.busy_rate)]
    if args.busy_senders:
        busy.append(stable(args, False, args.busy_rate, args.busy_senders))
    table("Busy network", busy)
    print(f"\nCPU: {time.process_time() - began:.0f} s")


if __name__ == "__main__":
    main()
