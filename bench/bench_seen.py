"""Seen-cache benchmark: bytes per remembered ID, and add / contains throughput.

What it measures (numbers only; nothing is asserted):

1. **Bytes per entry** of ``whisper.seen.SeenCache`` holding N unique IDs (``--sizes``,
   default 100k and 500k = the default cap), for Go-style 16-hex random IDs and for
   ``hash:sha256:`` IDs.  Each cell runs in a fresh child process: the IDs are generated
   first (the cache keeps only a 64-bit hash, never the string, so the strings are not its
   cost), then the cache is filled and measured two ways, in two separate children:

   - ``heap``: growth of ``tracemalloc``'s traced bytes / N (Python objects: the dict, the
     int keys, the bucket lists);
   - ``RSS``: growth of the process VmRSS / N (what the OS sees, allocator slack included).

2. **Throughput** (in this process, ``--rounds`` times):

   - ``add (fresh)``: N unique IDs, freshly built strings whose hash is not cached yet (as the
     node sees them straight from the decoder), clock advancing so buckets rotate;
   - ``add at cap``: adding 2 x cap IDs to a cache capped at N, so half the adds also evict
     whole buckets (the steady state under a sustained flood);
   - ``contains hit`` / ``contains miss``: membership tests (hash already cached on the
     string for hits, as in the node where ``in`` precedes ``add``).

How to read it: bytes/entry x ``DEFAULT_MAX_ENTRIES`` is the cache's worst-case memory;
ns/op x messages/s is the CPU share the cache costs the relay path.
Run ``.venv/bin/python bench/bench_seen.py --help`` for options.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from whisper.seen import DEFAULT_MAX_ENTRIES, SeenCache


def make_ids(n: int, kind: str, salt: int = 0) -> list[str]:
    """``n`` distinct IDs built as new string objects (their hash is not yet computed)."""
    if kind == "random16":
        return [f"{(i * 0x9E3779B97F4A7C15 + salt) & (2**64 - 1):016x}" for i in range(n)]
    if kind == "sha256":
        return ["hash:sha256:" + hashlib.sha256(b"%d:%d" % (salt, i)).hexdigest() for i in range(n)]
    raise ValueError(kind)


def _vmrss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def memory_child(n: int, kind: str, mode: str) -> dict[str, float]:
    ids = make_ids(n, kind)
    if mode == "trace":
        import tracemalloc

        tracemalloc.start()
        measure: Callable[[], int] = lambda: tracemalloc.get_traced_memory()[0]  # noqa: E731
    else:
        measure = _vmrss
    base = measure()
    cache = SeenCache(max_entries=max(n, DEFAULT_MAX_ENTRIES))
    for i, message_id in enumerate(ids):
        cache.add(message_id, i * 1e-4)  # 10k adds per simulated second: a few buckets
    grown = measure() - base
    assert len(cache) == n
    return {"n": n, "bytes": grown, "per_entry": grown / n}


def _child(n: int, kind: str, mode: str) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--_memory-child", str(n), kind, mode],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)


def run_memory(sizes: list[int], kinds: list[str]) -> None:
    print("bytes per entry (each cell a fresh process; IDs allocated before the baseline)")
    header = (
        f"{'ids':<9} {'entries':>9} {'heap bytes':>12} {'heap B/entry':>13} "
        f"{'RSS bytes':>12} {'RSS B/entry':>12}"
    )
    print(header)
    print("-" * len(header))
    for kind in kinds:
        for n in sizes:
            trace = _child(n, kind, "trace")
            rss = _child(n, kind, "rss")
            print(
                f"{kind:<9} {n:>9,} {trace['bytes']:>12,.0f} {trace['per_entry']:>13.1f} "
                f"{rss['bytes']:>12,.0f} {rss['per_entry']:>12.1f}"
            )


def run_throughput(n: int, kind: str, rounds: int) -> None:
    print()
    print(f"throughput, {n:,} {kind} IDs per operation kind, {rounds} rounds")
    print(f"{'round':>5}  {'operation':<16} {'ops/s':>12} {'ns/op':>8}")
    results: dict[str, list[float]] = {}

    def row(r: int, what: str, seconds: float, ops: int) -> None:
        rate = ops / seconds
        results.setdefault(what, []).append(rate)
        print(f"{r:>5}  {what:<16} {rate:>12,.0f} {1e9 / rate:>8.0f}")

    for r in range(1, rounds + 1):
        ids = make_ids(n, kind, salt=r)
        cache = SeenCache(max_entries=max(n, DEFAULT_MAX_ENTRIES))
        add = cache.add
        start = time.perf_counter()
        for i, message_id in enumerate(ids):
            add(message_id, i * 1e-4)
        row(r, "add (fresh)", time.perf_counter() - start, n)

        start = time.perf_counter()
        hits = sum(1 for message_id in ids if message_id in cache)
        row(r, "contains hit", time.perf_counter() - start, n)
        misses = make_ids(n, kind, salt=1000 + r)
        start = time.perf_counter()
        hits += sum(1 for message_id in misses if message_id in cache)
        row(r, "contains miss", time.perf_counter() - start, n)
        if hits != n:
            print(f"       (unexpected: {hits - n} false hits among misses)")
        del cache, ids, misses

        cap = max(n // 2, 1)
        capped = SeenCache(max_entries=cap)
        more = make_ids(2 * n, kind, salt=2000 + r)
        add = capped.add
        start = time.perf_counter()
        for i, message_id in enumerate(more):
            add(message_id, i * 1e-4)
        row(r, f"add at cap {cap // 1000}k", time.perf_counter() - start, len(more))
        del capped, more
    print()
    print("summary (median [min-max] over rounds):")
    for what, rates in results.items():
        print(
            f"  {what:<16} {statistics.median(rates):>12,.0f} ops/s "
            f"[{min(rates):,.0f}-{max(rates):,.0f}]  {1e9 / statistics.median(rates):.0f} ns/op"
        )


def main() -> None:
    p = argparse.ArgumentParser(
        description="Bytes per entry and add/contains throughput of whisper.seen.SeenCache."
    )
    p.add_argument(
        "--sizes",
        default=f"100000,{DEFAULT_MAX_ENTRIES}",
        help=f"comma-separated entry counts for the memory table (100000,{DEFAULT_MAX_ENTRIES})",
    )
    p.add_argument("--kinds", default="random16,sha256", help="ID kinds: random16,sha256 (both)")
    p.add_argument("--ops", type=int, default=500_000, help="operations per throughput run")
    p.add_argument("--rounds", type=int, default=3, help="throughput rounds (3)")
    p.add_argument("--_memory-child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._memory_child:
        n, kind, mode = args._memory_child
        print(json.dumps(memory_child(int(n), kind, mode)))
        return
    kinds = [k.strip() for k in args.kinds.split(",")]
    run_memory([int(s) for s in args.sizes.split(",")], kinds)
    for kind in kinds:
        run_throughput(args.ops, kind, args.rounds)


if __name__ == "__main__":
    main()
