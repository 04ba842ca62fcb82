"""Blacklist benchmark: what adding, looking up and expiring entries cost as the list grows.

What it measures (numbers only; nothing is asserted), for a ``whisper.flood.Blacklist``
already holding N entries (``--sizes``, default 1k, 10k and 33k: 33k is where cuts had fallen
from 603/s to 119/s when each add rebuilt the whole list):

- ``add``: entries added per second, each for a new host and origin, at a clock that
  advances so that expiry times differ (a flood of cut connections);
- ``lookup``: ``addr`` and ``host`` look-ups per second (each connection opened and each
  dial asks one);
- ``expire``: entries expired per second, when half of them run out at once.

How to read it: ``add`` bounds how many flooders a node can cut a second; it should not fall
as N grows (O(log n) per entry).  Run ``.venv/bin/python bench/bench_blacklist.py --help``.
"""

from __future__ import annotations

import argparse
import time

from whisper.flood import Blacklist, Entry

LIFETIME = 600.0


def entry(i: int, now: float) -> Entry:
    host = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
    return Entry(host, f"10.0.0.1:{i}", now, now + LIFETIME, "x")


def filled(n: int) -> Blacklist:
    blacklist = Blacklist()
    for i in range(n):
        blacklist.add(entry(i, i * 1e-3))
    return blacklist


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>12,.0f}/s"


def measure(n: int, ops: int) -> None:
    blacklist = filled(n)
    now = n * 1e-3
    start = time.perf_counter()
    for i in range(n, n + ops):
        blacklist.add(entry(i, now + i * 1e-6))
    add = rate(ops, time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(ops):
        blacklist.addr(f"10.0.0.1:{i}", now)
        blacklist.host(f"10.0.{i >> 8 & 255}.{i & 255}", now)
    lookup = rate(2 * ops, time.perf_counter() - start)
    half = filled(n)
    start = time.perf_counter()
    half.addr("x", n * 5e-4 + LIFETIME)  # the first half of the entries have run out
    expired = n - len(half)
    expire = rate(expired, time.perf_counter() - start)
    print(f"{n:>8,}  add {add}  lookup {lookup}  expire {expire} ({expired:,} at once)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,33000", help="entries already held")
    parser.add_argument("--ops", type=int, default=1000, help="adds and look-ups per size")
    args = parser.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        measure(n, args.ops)


if __name__ == "__main__":
    main()
