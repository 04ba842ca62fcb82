"""The real engine with its overlay router against flood routing, N engines in one process.

What it measures (numbers only; nothing is asserted), on ``whisper.engine.simnet.SimNet``
(the real relay code and ``engine/overlay_router.py``, byte pipes, a virtual clock; every
hop is instant, so there is no latency to report, only work):

- ``--peers`` engines join one every 0.2 s, each through a random earlier one, and 30 s
  pass (the views fill); ``--warmup`` messages let the tree form; then ``--messages``
  messages from random peers, one a second.  For each routing: delivery (messages shown,
  over those owed), duplicates dropped per delivery, whole messages written per delivery,
  links (outgoing, up) and TCP connections (in + out) per peer (mean, max), and the CPU
  time (``time.thread_time``) per message per peer of the measured messages.
- Flood routing builds its mesh the way a flood network does: everyone dials every ``Addr``
  it sees (it links to all after its first messages), so its warm-up is longer.

Both routings run in the same process, alternately, ``--rounds`` times; the table shows
the median of the CPU numbers.  Run ``.venv/bin/python bench/bench_overlay_engine.py``
(about a minute for 60 peers).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from whisper.config import Config
from whisper.engine.simnet import SimNet
from whisper.routing.overlay import OverlayConfig


def address(i: int) -> str:
    return f"10.0.{i // 250}.{i % 250 + 1}:5000"


def run(routing: str, peers: int, warmup: int, messages: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    overlay = OverlayConfig(seed=seed) if routing == "overlay" else None
    net = SimNet(config=Config(host="10.0.0.1", discovery=None, routing=overlay))
    for i in range(peers):
        contacts = [rng.choice(list(net.peers))] if net.peers else []
        net.add(address(i), peers=contacts)
        net.advance(0.2)
    net.advance(30)
    for k in range(warmup):
        net.say(rng.choice(list(net.peers)), f"warm{k}")
        net.advance(1.0)
    engines = [p.engine for p in net.peers.values()]
    dups0 = sum(e.stats.duplicates for e in engines)
    got0 = sum(len(p.delivered) for p in net.peers.values())
    written0 = sum(e.stats.received for e in engines)
    cpu0 = time.thread_time()
    for k in range(messages):
        net.say(rng.choice(list(net.peers)), f"m{k}")
        net.advance(1.0)
    cpu = time.thread_time() - cpu0
    got = sum(len(p.delivered) for p in net.peers.values()) - got0
    dups = sum(e.stats.duplicates for e in engines) - dups0
    received = sum(e.stats.received for e in engines) - written0
    links = [len(net.linked(a)) for a in net.peers]
    conns = [len(e.table.outgoing) + len(e.table.incoming) for e in engines]
    return {
        "delivery": got / (messages * (peers - 1)),
        "dups": dups / got if got else float("nan"),
        "objects": received / got if got else float("nan"),
        "links_mean": statistics.mean(links),
        "links_max": max(links),
        "conns_max": max(conns),
        "cpu_us": cpu / (messages * peers) * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"overlay": [], "flood": []}
    for r in range(args.rounds):
        for routing in ("overlay", "flood") if r % 2 == 0 else ("flood", "overlay"):
            results[routing].append(run(routing, args.peers, args.warmup, args.messages, args.seed))
    print(f"{args.peers} engines, {args.messages} messages measured, median of {args.rounds}")
    print(
        "routing  delivery  dups/delivery  objects read/delivery  links mean/max  "
        "conns max  CPU us/message/peer"
    )
    for routing, rows in results.items():
        row = rows[0]  # deterministic given the seed, but for the CPU time
        cpu = statistics.median(r["cpu_us"] for r in rows)
        print(
            f"{routing:8} {row['delivery']:8.1%}  {row['dups']:13.3f}  {row['objects']:21.2f}  "
            f"{row['links_mean']:5.1f} / {row['links_max']:<4}   {row['conns_max']:9}  {cpu:10.0f}"
        )


if __name__ == "__main__":
    main()
