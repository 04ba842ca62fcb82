"""Connection-slot benchmark: what one decision costs when every slot is taken.

What it measures (numbers only; nothing is asserted), with tables of ``--slots`` entries
(default 128, the default caps), in microseconds per call:

- ``admit, none may give way``: a new incoming connection when every slot delivered a new
  message recently (the newcomer is refused after a scan of every slot);
- ``admit, evicting``: the same when the slots are idle and one gives way (the table is
  refilled after each call, so every call evicts);
- ``should_dial, none may give way``: a message of a new ``Addr`` while the outgoing table
  is full of links whose addresses spoke recently (the relay path pays this per message);
- ``should_dial, replacing``: the same when the links are quiet and one is replaced.

How to read it: each call is linear in the slots; compare with the relay path's per-message
cost (``bench_relay.py``: about 20 to 30 microseconds a message).
Run ``.venv/bin/python bench/bench_slots.py --help`` for options.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from whisper.peers import PeerTable


def per_call(fn: Callable[[int], object], rounds: int) -> float:
    start = time.perf_counter()
    for i in range(rounds):
        fn(i)
    return (time.perf_counter() - start) / rounds * 1e6


def incoming(slots: int, busy: bool) -> Callable[[int], object]:
    t = PeerTable("9.9.9.9:1", max_incoming=slots, max_per_host=slots)
    for i in range(slots):
        t.admit(f"1.{i % 8}.0.{i // 8}:5", 0.0, lambda: None)
        if busy:
            t.delivered(f"1.{i % 8}.0.{i // 8}:5", None, 100.0)
    return lambda i: t.admit(f"2.0.{i % 250}.1:{i % 60000 + 1}", 120.0, lambda: None)


def outgoing(slots: int, busy: bool) -> Callable[[int], object]:
    t = PeerTable("9.9.9.9:1", max_outgoing=slots)
    for i in range(slots):
        t.should_dial(f"1.{i % 8}.0.{i // 8}:5", 0.0, spoke=busy)
        if busy:
            t.delivered("", f"1.{i % 8}.0.{i // 8}:5", 100.0)
    return lambda i: t.should_dial(f"2.0.{i % 250}.1:{i % 60000 + 1}", 120.0, spoke=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=20_000)
    args = parser.parse_args()
    for name, make, busy in (
        ("admit, none may give way", incoming, True),
        ("admit, evicting", incoming, False),
        ("should_dial, none may give way", outgoing, True),
        ("should_dial, replacing", outgoing, False),
    ):
        print(f"{name:32} {per_call(make(args.slots, busy), args.rounds):7.1f} us")


if __name__ == "__main__":
    main()
