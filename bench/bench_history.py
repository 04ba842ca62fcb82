"""History benchmark: insert rate against the relay's, and search over 1,000,000 messages.

What it measures (numbers only; nothing is asserted).  Messages are like chat: 8-20 words
from a 50,000-word vocabulary with Zipf frequencies (about 100 bytes of Body), 200 nicks,
``hash:sha256:`` IDs, ``Nick`` and ``omitempty`` as whisper sends them.

1. **insert**: ``History.add_messages`` in one thread, batches of 100 / 1,000 / 10,000
   (``--insert`` messages each): messages/s and CPU us a message.
2. **writer**: the trio ``HistoryWriter`` fed 1,000 msgs/s for 2 s (a busy chat), then
   ``--rate`` msgs/s (default 50,000: the relay's rate here) for ``--seconds``, one tick a
   millisecond, as a relay would (``put_many`` of ``Delivered`` events with their wire
   bytes, as ``HistoryStage.hold`` does; ``History.add_shown`` in the thread): how long a
   message waits from ``put`` to its release (shown means committed), the batches, the
   event loop's CPU in ``put_many``.  A writer that falls ``MAX_PENDING`` behind switches
   history off, and the notice is printed.  (A burst "flat out" is the relay section's:
   only a real relay says how fast messages come when nothing waits between them.)
3. **search** (``--messages``, default 1,000,000): a history of that many messages built in
   a temporary directory (build time, file size), then each query ``--repeat`` times: a
   rare word, a common word, two words, a phrase, a nick, a word no message holds, hostile
   text.  Median and max ms, newest 50 (the ``/search`` limit).  Also: opening the file
   (with and without ``quick_check``), a page 500,000 messages back, the backlog query.
4. **relay** (``--relay N``): N rounds of ``bench_relay.py``'s saturation phase on the same
   machine, alternating ``whisper -no-history`` and ``whisper -history FILE`` (the store
   stage, ``whisper/store/stage.py``), in alternating order: relay msgs/s, the peer's CPU
   us/msg (all threads: SQLite's work is in the writer's) and its event loop's (the main
   thread's) of each, and the ratios with/without in each round and their median.

Run ``.venv/bin/python bench/bench_history.py --help``; ``--skip`` leaves sections out.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import itertools
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

from whisper import codec
from whisper.events import Delivered
from whisper.message import Message
from whisper.store import History, Record
from whisper.store.writer import HistoryWriter

HERE = Path(__file__).resolve().parent
VOCABULARY = 50_000
LIMIT = 50  # results a /search shows


class Chat:
    """Deterministic chat-like messages."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        letters = "abcdefghijklmnopqrstuvwxyz"
        self.words = [
            "".join(self.rng.choice(letters) for _ in range(self.rng.randint(2, 9)))
            for _ in range(VOCABULARY)
        ]
        self.cum = list(itertools.accumulate(1 / (i + 1) for i in range(VOCABULARY)))
        self.nicks = [f"nick{i}" for i in range(200)]
        self.n = 0
        self.start_ms = int(time.time() * 1000)

    def message(self) -> Message:
        n = self.n
        self.n += 1
        rng = self.rng
        body = " ".join(rng.choices(self.words, cum_weights=self.cum, k=rng.randint(8, 20)))
        addr = f"10.0.{n % 50}.1:55555"
        ts = self.start_ms + n
        mid = "hash:sha256:" + hashlib.sha256(f"{addr}\0{body}\0{ts}".encode()).hexdigest()
        nick = self.nicks[n % 200]
        return Message.create(id=mid, addr=addr, body=body, nick=nick, timestamp=ts)

    def records(self, n: int, at: float | None = None) -> list[Record]:
        now = time.time() if at is None else at
        return [Record(self.message(), now) for _ in range(n)]


def _fresh(folder: Path, name: str) -> Path:
    path = folder / name
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path


def bench_insert(folder: Path, n: int) -> None:
    print(f"\n== insert: {n:,} messages per batch size; Record rows, and wire bytes (add_shown)")
    chat = Chat(2)
    for size in (100, 1000, 10_000):
        batches = [chat.records(size) for _ in range(n // size)]
        shown = [
            [(b[0].received_at, [Delivered(r.message, data=codec.encode(r.message)) for r in b])]
            for b in batches
        ]
        for label, add, work in (
            ("add_messages", "add_messages", batches),
            ("add_shown", "add_shown", shown),
        ):
            with History.open(_fresh(folder, f"insert{size}")) as h:
                wall, cpu = time.perf_counter(), time.process_time()
                for batch in work:
                    getattr(h, add)(batch)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(
                f"{label:>12} batch {size:>6,}: {n / wall:>9,.0f} msgs/s   CPU"
                f" {cpu / n * 1e6:5.1f} us/msg   (wall {wall / n * 1e6:5.1f} us/msg)"
            )


def bench_writer(folder: Path, rate: int, seconds: float) -> None:
    print(f"\n== writer: HistoryWriter fed {rate:,} msgs/s for {seconds:g} s")
    chat = Chat(3)
    per_tick = max(1, rate // 1000)
    paced = [chat.message() for _ in range(per_tick * int(seconds * 1000))]
    trio.run(_writer_run, _fresh(folder, "chat"), [chat.message() for _ in range(2000)], 1)
    trio.run(_writer_run, _fresh(folder, "paced"), paced, per_tick)


async def _writer_run(path: Path, messages: list[Message], per_tick: int) -> None:
    """Feed ``per_tick`` messages a millisecond, as one engine batch each."""
    waits: list[float] = []
    notices: list[str] = []
    put_at: collections.deque[list] = collections.deque()  # [tokens left, trio time put]

    def release(tokens: list[Delivered]) -> None:
        now, left = trio.current_time(), len(tokens)
        while left:
            chunk = put_at[0]
            k = min(left, chunk[0])
            waits.extend([now - chunk[1]] * k)
            chunk[0] -= k
            left -= k
            if not chunk[0]:
                put_at.popleft()

    step = per_tick
    chunks = [
        [Delivered(m, data=codec.encode(m)) for m in messages[i : i + step]]
        for i in range(0, len(messages), step)
    ]
    with History.open(path) as h:
        writer = HistoryWriter(h, release, notices.append, write=h.add_shown)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            start = trio.current_time()
            loop_cpu = 0.0
            for tick, events in enumerate(chunks):
                now = trio.current_time()
                put_at.append([len(events), now])
                c = time.thread_time()
                writer.put_many((time.time(), events), events)  # what HistoryStage.hold does
                loop_cpu += time.thread_time() - c
                await trio.sleep_until(start + (tick + 1) / 1000)
            fed = trio.current_time() - start
            await writer.flush()
            took = trio.current_time() - start
            nursery.cancel_scope.cancel()
    s = writer.stats
    waits.sort()
    what = f"fed {len(messages) / fed:,.0f} msgs/s"
    print(
        f"{what}: stored {s.stored:,} of {len(messages):,} in {took:.2f} s"
        f" ({s.stored / took:,.0f} msgs/s); {s.batches:,} batches (largest"
        f" {s.largest_batch:,}, longest commit {s.longest_commit * 1e3:.0f} ms); event loop"
        f" {loop_cpu / len(messages) * 1e6:.2f} us/msg in put_many"
    )
    if waits:
        print(
            f"  put -> release (shown): p50 {_q(waits, 0.5):.1f} / p99 {_q(waits, 0.99):.1f}"
            f" / max {waits[-1] * 1e3:.1f} ms over {len(waits):,} released"
        )
    for text in notices:
        print(f"  notice: {text}")


def _q(sorted_s: list[float], q: float) -> float:
    return sorted_s[min(len(sorted_s) - 1, int(q * len(sorted_s)))] * 1e3


def bench_search(folder: Path, n: int, repeat: int) -> None:
    print(f"\n== search over {n:,} stored messages")
    path = _fresh(folder, "search")
    chat = Chat(4)
    gen = insert = cpu = 0.0
    with History.open(path) as h:
        step = 10_000
        t0 = time.time() - n / 1000  # received over the last n/1000 seconds
        for i in range(0, n, step):
            c = time.perf_counter()
            batch = chat.records(min(step, n - i), at=t0 + i / 1000)
            gen += time.perf_counter() - c
            c, p = time.perf_counter(), time.process_time()
            h.add_messages(batch)
            insert += time.perf_counter() - c
            cpu += time.process_time() - p
        size = sum(os.path.getsize(p) for p in folder.glob("search*") if p.is_file())
        print(
            f"built: {n:,} messages in {insert:.1f} s of inserts ({n / insert:,.0f} msgs/s,"
            f" CPU {cpu / n * 1e6:.1f} us/msg;"
            f" generating them took {gen:.1f} s more); files {size / 1e6:,.0f} MB"
            f" ({size / n:.0f} B/msg)"
        )
    for check in (False, True):
        c = time.perf_counter()
        History.open(path, check=check).close()
        took = (time.perf_counter() - c) * 1e3
        print(f"open {'with' if check else 'without'} quick_check: {took:,.0f} ms")
    words = chat.words
    queries = {
        "rare word": words[40_000],
        "common word": words[0],
        "mid word": words[500],
        "two common words": f"{words[1]} {words[2]}",
        "four common words": " ".join(words[5:9]),
        "common word + nick": f"{words[0]} nick7",
        "16 mid words": " ".join(words[1000:1016]),
        "common + rare": f"{words[0]} {words[30_000]}",
        "phrase": f"{words[3]}-{words[4]}",
        "nick": "nick7",
        "absent word": "zzzzzzzzzzzz",
        "hostile": '" NEAR( * AND -x ^ {',
    }
    with History.open(path, check=False) as h:
        print(f"{'query':<20} {'median ms':>9} {'max ms':>8} {'hits':>5}   text")
        slowest = 0.0
        for label, text in queries.items():
            h.search(text, LIMIT)  # warm
            times = []
            for _ in range(repeat):
                c = time.perf_counter()
                found = h.search(text, LIMIT)
                times.append((time.perf_counter() - c) * 1e3)
            slowest = max(slowest, max(times))
            print(
                f"{label:<20} {statistics.median(times):9.2f} {max(times):8.2f} {len(found):5}"
                f"   {text!r}"
            )
        print(f"slowest search: {slowest:.2f} ms (target: under 100 ms)")
        for label, fn in (
            ("page 500k back", lambda: h.page(before=max(1, n - 500_000), limit=100)),
            ("latest page", lambda: h.page(limit=100)),
            ("backlog query", lambda: h.recent_for_backlog(100, 480, time.time())),
        ):
            times = []
            for _ in range(repeat):
                c = time.perf_counter()
                fn()
                times.append((time.perf_counter() - c) * 1e3)
            print(f"{label:<20} {statistics.median(times):9.2f} {max(times):8.2f}")


def bench_relay(folder: Path, rounds: int, messages: int) -> None:
    sys.path.insert(0, str(HERE))
    import bench_relay  # the relay bench's machinery: sinks, source, saturation phase

    print(f"\n== relay: {rounds} rounds of {messages:,} messages, without / with history")
    args = argparse.Namespace(
        sinks="process",
        sinks_count=4,
        messages=messages,
        rate=200.0,
        latency_seconds=1.0,
        sustain=0,
        sustain_without_timestamp=False,
    )
    peer = [sys.executable, "-m", "whisper"]
    results: list[dict[bool, tuple[float, float, float]]] = []
    for r in range(rounds):
        row: dict[bool, tuple[float, float, float]] = {}
        for with_history in (False, True) if r % 2 == 0 else (True, False):  # interleaved
            db = _fresh(folder, f"relay{r}")
            cmd = [*peer, "-history", str(db)] if with_history else [*peer, "-no-history"]
            run = bench_relay.measure(
                "with history" if with_history else "without",
                lambda cmd=cmd: bench_relay.whisper_peer(cmd, history=True),  # flags are ours
                args,
            )
            sat = run.bench.results["saturation"]
            row[with_history] = (
                sat["e2e_rate"],
                sat["peer_us_per_msg"],
                sat["peer_loop_us_per_msg"],
            )
            if with_history:
                with History.open(db) as history:  # the peer has exited: the lock is free
                    print(f"history peer: {history.count():,} messages stored", flush=True)
        results.append(row)
        (off, off_us, off_loop), (on, on_us, on_loop) = row[False], row[True]
        print(
            f"round {r + 1}: without {off:,.0f} msgs/s (CPU {off_us:.1f} us/msg, event loop"
            f" {off_loop:.1f}), with history {on:,.0f} msgs/s (CPU {on_us:.1f} us/msg, event"
            f" loop {on_loop:.1f}): rate ratio {on / off:.2f}",
            flush=True,
        )
    ratios = [row[True][0] / row[False][0] for row in results]
    loops = [row[True][2] / row[False][2] for row in results]
    print(
        f"rate with/without per round: {', '.join(f'{x:.2f}' for x in ratios)};"
        f" median {statistics.median(ratios):.2f} (target: at least 0.90)\n"
        f"event loop CPU with/without per round: {', '.join(f'{x:.2f}' for x in loops)};"
        f" median {statistics.median(loops):.2f}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--insert", type=int, default=200_000, help="messages per insert run")
    p.add_argument("--rate", type=int, default=50_000, help="writer's paced rate (msgs/s)")
    p.add_argument("--seconds", type=float, default=5.0, help="writer's paced run (s)")
    p.add_argument("--messages", type=int, default=1_000_000, help="messages to search over")
    p.add_argument("--repeat", type=int, default=20, help="runs of each query")
    p.add_argument("--relay", type=int, default=0, metavar="N", help="relay rounds (0: none)")
    p.add_argument("--relay-messages", type=int, default=200_000)
    p.add_argument("--dir", type=Path, default=None, help="work here (default: a temp dir)")
    p.add_argument(
        "--skip", nargs="*", default=[], choices=["insert", "writer", "search"], help="sections"
    )
    args = p.parse_args()
    print(f"CPUs: {os.cpu_count()}; load avg {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        if "insert" not in args.skip:
            bench_insert(folder, args.insert)
        if "writer" not in args.skip:
            bench_writer(folder, args.rate, args.seconds)
        if "search" not in args.skip:
            bench_search(folder, args.messages, args.repeat)
        if args.relay:
            bench_relay(folder, args.relay, args.relay_messages)
    print(f"load avg at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
