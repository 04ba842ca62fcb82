"""Flood-control benchmark: what the hot path costs, and what issue 8's attacks still get.

Pure and synchronous (``whisper.flood`` with a simulated clock; no sockets), so it runs in
seconds and its numbers do not depend on the machine's load, except the first:

1. **hot path**: ns per new message on one connection carrying 150 origins (work token,
   budget token, origin token, light check), the per-object price every relayed message
   pays with flood control on; and ns per duplicate (work token only); the loop's own cost
   subtracted.
2. **reconnecting flooder** (item 7): a new connection every 4,900 messages (in one write),
   200 times a second, for 60 s, from one IP: messages accepted a second (it was 20,000 with
   a 5,000 burst per connection, at 4 reconnections a second).
3. **forgers** (item 3): six connections at 38 a second forging bob's ``Addr`` while bob
   sends 2 a second: how many of bob's 40 messages are accepted (it was 6).
4. **payloads without Body** (item 7): how many ``{}`` one connection gets read before it is
   cut (they were not counted at all).

Usage: ``python bench/bench_flood.py``.
"""

from __future__ import annotations

import time

from whisper.flood import FloodConfig, FloodControl, FloodCut

TICK = 0.005


def hot_path(n: int = 300_000) -> tuple[float, float]:
    control = FloodControl()
    conn = control.open("10.0.0.9:40000", 0.0)
    origins = [f"10.1.{i // 250}.{i % 250}:7000" for i in range(150)]
    start = time.perf_counter()
    for i in range(n):
        now = i / 300.0  # 300 new messages a second: within every limit
        conn.pace(now)
        conn.count(now, None)
        conn.admit(origins[i % 150], now)
        conn.light(now)
    new = (time.perf_counter() - start) / n * 1e9
    conn = control.open("10.0.0.8:40000", 0.0)
    start = time.perf_counter()
    for i in range(n):
        conn.pace(i / 1000.0)  # 1,000 copies a second: read without a pause
    dup = (time.perf_counter() - start) / n * 1e9
    start = time.perf_counter()
    for i in range(n):
        _ = i / 1000.0  # the loop alone, to subtract
    loop = (time.perf_counter() - start) / n * 1e9
    return new - loop, dup - loop


def reconnecting(seconds: float = 60.0) -> float:
    """Accepted a second, reconnecting after every 4,900 (200 times a second)."""
    control, now, accepted = FloodControl(), 0.0, 0
    while now < seconds:
        conn = control.open(f"10.0.0.66:{int(now / TICK) % 60000 + 1}", now)
        for _ in range(4900):
            try:
                if not conn.count(now):
                    break
            except FloodCut:
                break
            accepted += 1
        now += TICK
    return accepted / seconds


def forgers(seconds: float = 20.0) -> int:
    control, bob_addr = FloodControl(), "10.0.0.7:7000"
    bob = control.open("10.0.0.7:40000", 0.0)
    forged = [control.open(f"10.0.0.{60 + i}:40000", 0.0) for i in range(6)]
    now, got, due = 0.0, 0, 0.0
    while now < seconds:
        due += 38 * TICK
        while due >= 1:
            due -= 1
            for conn in forged:
                conn.count(now, bob_addr) and conn.admit(bob_addr, now)
        if round(now / TICK) % round(0.5 / TICK) == 0:
            got += bob.count(now, bob_addr) and bob.admit(bob_addr, now)
        now += TICK
    return got


def bodiless() -> int:
    conn, read = FloodControl().open("10.0.0.66:40000", 0.0), 0
    try:
        while read < 30_000_000:
            conn.count(0.0)
            read += 1
    except FloodCut:
        pass
    return read


def main() -> None:
    cfg = FloodConfig()
    new, dup = hot_path()
    print(f"hot path: {new:.0f} ns per new message, {dup:.0f} ns per duplicate")
    print(
        f"reconnecting flooder (every 4,900, 200 times a second): {reconnecting():,.0f}"
        f" accepted/s (one connection's rate: {cfg.conn_rate:g}/s)"
    )
    print(f"six forgers at 38/s each: {forgers()} of bob's 40 messages accepted")
    print(f"payloads without Body read before the cut: {bodiless():,} (of 30,000,000 sent)")


if __name__ == "__main__":
    main()
