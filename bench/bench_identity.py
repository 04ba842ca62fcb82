"""Identity benchmark: what signing, verifying and direct messages cost (PROTOCOL.md §7.5, §7.6).

What it measures (numbers only; nothing is asserted), each operation ``--n`` times per round,
``--rounds`` rounds, the median round printed as microseconds per operation, both wall time
and this thread's CPU time (the CPU figure is the one least disturbed by other load on a
shared machine):

- ``sign``: ``signing.sign`` of a ~150-byte chat message (encoding + one Ed25519 signature);
- ``verify``: ``signing.verify`` of that message as decoded (base64, encoding, one Ed25519
  verification), and of a tampered copy, and of a 512 KiB one (work linear in the size);
- ``seal`` / ``open (ours)``: ``dm.seal`` of a 100-character DM (which includes converting
  the recipient's Ed25519 key to X25519), ``dm.open_dm`` by its recipient;
- ``open (not ours)``: ``dm.open_dm`` by another peer, which every peer pays for every DM
  (one X25519 operation), at the smallest and the largest bucket;
- ``fingerprint``, ``pins.assess`` (a bound nick), for scale.

Then the relay budget: verifications per second on one core, and what relaying signed
traffic costs if every new message is verified once on the relay's thread, beside whisper's
own relay cost per message (``--relay-us``, measured by ``bench_relay.py``; README) and the
Go reference peer's relay rate of unsigned traffic measured there (``--go-rate``).  Last,
verification in two threads at once (libsodium runs without the GIL): the aggregate rate
against one thread's; and in one thread beside a busy Python loop, which is what a relay's
event loop is under load: there a thread verifies only a few hundred a second (it waits for
the GIL after each call), so whisper verifies bursts in child processes (``verifier.py``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable

from whisper import codec, ids
from whisper.identity import dm, fingerprints, pins, signing
from whisper.identity.keys import Identity

ALICE = Identity(bytes(range(32)))
BOB = Identity(bytes(range(32, 64)))
CAROL = Identity(bytes(range(64, 96)))


def chat(body: str) -> dict:
    addr, stamp = "10.0.0.5:55555", 1795265846123
    return {
        "ID": ids.hashed_id(addr, body, stamp),
        "Addr": addr,
        "Body": body,
        "Nick": "alice",
        "omitempty": "alice",
        "Timestamp": stamp,
    }


def decoded(fields: dict) -> dict:
    """As a receiver has it: encoded and decoded by the codec."""
    (obj,) = codec.decode_all(codec.encode_object(fields))
    assert isinstance(obj, dict)
    return obj


def measure(fn: Callable[[], object], n: int, rounds: int) -> tuple[float, float]:
    """Median (wall us, CPU us) per call."""
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.thread_time()
        for _ in range(n):
            fn()
        cpus.append((time.thread_time() - cpu) / n * 1e6)
        walls.append((time.perf_counter() - wall) / n * 1e6)
    return statistics.median(walls), statistics.median(cpus)


def threaded_rate(fn: Callable[[], object], n: int, threads: int) -> float:
    """Calls per second of wall time with ``threads`` threads each calling ``fn`` n times."""
    workers = [threading.Thread(target=lambda: [fn() for _ in range(n)]) for _ in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return threads * n / (time.perf_counter() - start)


def beside_busy_loop(fn: Callable[[], object], n: int) -> float:
    """Calls per second of ``fn`` in a second thread while this one runs Python flat out
    (as a relay's event loop does under load): each call must take the GIL back after its
    libsodium part, and waits the switch interval for it."""
    stop = threading.Event()

    def verify_all() -> None:
        for _ in range(n):
            fn()
        stop.set()

    worker = threading.Thread(target=verify_all)
    start = time.perf_counter()
    worker.start()
    x = 0
    while not stop.is_set():
        for i in range(1000):
            x += i
    worker.join()
    return n / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="operations per round (default 2000)")
    p.add_argument("--rounds", type=int, default=5, help="rounds; the median is shown (5)")
    p.add_argument(
        "--relay-us",
        type=float,
        default=13.5,
        help="whisper's relay CPU per message, unsigned (README: 13.5 us)",
    )
    p.add_argument(
        "--go-rate",
        type=float,
        default=30_000,
        help="the Go peer's relay rate of unsigned traffic (README: 30,000-45,000 msgs/s)",
    )
    args = p.parse_args()
    n, rounds = args.n, args.rounds

    signed = decoded(signing.sign(ALICE, chat("hello, this is a short chat line " * 3)))
    tampered = dict(signed, Body=signed["Body"] + "!")
    big = decoded(signing.sign(ALICE, chat("x" * (512 * 1024))))
    for fields, expect in ((signed, True), (tampered, False), (big, True)):
        assert signing.verify(fields).valid is expect
    text = "a direct message of a hundred characters, give or take, which is what people type"
    outer = dict(id=ids.random_id(), addr="10.0.0.5:55555", timestamp=1795265846123, nick="alice")
    sealed = dm.seal(ALICE, BOB.public, **outer, text=text)
    sealed_big = dm.seal(ALICE, BOB.public, **outer, text="y" * 200_000)
    assert len(sealed_big[dm.SEALED]) == max(dm.SEALED_LENGTHS)
    assert (opened := dm.open_dm(BOB, sealed)) is not None and opened.valid
    assert dm.open_dm(CAROL, sealed) is None and dm.open_dm(CAROL, sealed_big) is None
    table = pins.PinTable()
    table.assess("alice", ALICE.public, 0.0)

    ops: list[tuple[str, Callable[[], object], int]] = [
        ("sign", lambda: signing.sign(ALICE, signed), n),
        ("verify", lambda: signing.verify(signed), n),
        ("verify (tampered)", lambda: signing.verify(tampered), n),
        ("verify (512 KiB Body)", lambda: signing.verify(big), max(1, n // 20)),
        ("seal (100 chars)", lambda: dm.seal(ALICE, BOB.public, **outer, text=text), n),
        ("open (ours)", lambda: dm.open_dm(BOB, sealed), n),
        ("open (not ours, 256 B bucket)", lambda: dm.open_dm(CAROL, sealed), n),
        ("open (not ours, 256 KiB bucket)", lambda: dm.open_dm(CAROL, sealed_big), max(1, n // 20)),
        ("fingerprint", lambda: fingerprints.fingerprint(ALICE.public), n),
        ("pins.assess (bound)", lambda: table.assess("alice", ALICE.public, 1.0), n),
    ]
    print(f"{'operation':<34} {'wall us':>9} {'CPU us':>9}")
    cpu: dict[str, float] = {}
    for name, fn, count in ops:
        wall_us, cpu[name] = measure(fn, count, rounds)
        print(f"{name:<34} {wall_us:>9.1f} {cpu[name]:>9.1f}", flush=True)

    verify_us = cpu["verify"]
    per_core = 1e6 / verify_us
    signed_relay = 1e6 / (args.relay_us + verify_us)
    print()
    print(f"one core verifies {per_core:,.0f} messages/s ({verify_us:.1f} us each, CPU)")
    print(
        f"relaying signed traffic, verifying each new message once on the relay's thread:"
        f" {args.relay_us:.1f} + {verify_us:.1f} us = {signed_relay:,.0f} msgs/s"
        f" (unsigned: {1e6 / args.relay_us:,.0f}; the Go peer, unsigned: {args.go_rate:,.0f})"
    )
    print(
        f"  verification alone is {verify_us / args.relay_us:.1f}x the rest of the relay path;"
        f" every DM costs every peer {cpu['open (not ours, 256 B bucket)']:.1f} us to try"
    )
    one = threaded_rate(lambda: signing.verify(signed), n, 1)
    two = threaded_rate(lambda: signing.verify(signed), n, 2)
    load = os.getloadavg()[0]
    print(
        f"verify in 1 thread: {one:,.0f}/s; in 2 threads at once: {two:,.0f}/s ({two / one:.2f}x;"
        f" load average {load:.1f} on {os.cpu_count()} cores: above 1x, a second core verified"
        " while the first did, which it can only do without the GIL)"
    )
    beside = beside_busy_loop(lambda: signing.verify(signed), max(50, n // 10))
    print(
        f"verify in a thread beside a busy Python loop: {beside:,.0f}/s (switch interval"
        f" {sys.getswitchinterval() * 1e3:.0f} ms: why whisper verifies bursts in child"
        " processes, whisper/verifier.py, and not in a thread)"
    )


if __name__ == "__main__":
    main()
