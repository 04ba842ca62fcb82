"""Web benchmark: websocket feeds attached to a real ``whisper -http`` peer (127.0.0.1 only).

Reuses ``bench_relay``'s peer, sinks and source.  The feeds are websocket clients (trio
and trio-websocket) in one process of their own; each counts the ``message`` events it
gets and, for the fan-out phase, the time from the source writing a message (its Body is
``bench <time.monotonic_ns()>``, system-wide on Linux) to the frame holding it arriving.

Phases:

1. **fan-out**: ``--clients`` feeds (100) attached while the source writes ``--rate``
   msgs/s (500) for ``--seconds`` (10) into a peer that relays them to 4 sinks.  Printed:
   how many messages each feed got (every feed must get every message), latency p50 / p99 /
   max (target p99 <= 50 ms), frames per feed, ``missed`` events, the peer's CPU, and how
   long the peer and the feeds were runnable but waiting for a CPU (``/proc/PID/schedstat``):
   on a shared machine that wait, not whisper, is most of a bad p99.
2. **relay rate**: ``--messages`` (100,000) blasted as fast as the peer reads them, relayed
   to 4 sinks, by a fresh peer each run, three ways: without ``-http``, with ``-http`` and
   no feed, with ``-http`` and ``--feeds`` (10) feeds attached; ``--runs`` (3) rounds,
   interleaved, medians printed, and the median of each round's ratio to its own
   "no -http" run (paired: drift in the machine's load cancels), and for the feeds also to
   its own "-http, no feed" run.  Target: with 10 feeds within 5% of none.  "peer CPU
   us/msg" is the figure least disturbed by other load on a shared machine.
3. **calls** (``--calls``, instead of the relay rate): the same blast into a peer run under
   cProfile, once per kind, less a run of the same kind without the blast (start-up
   cancels), printing the Python function calls per relayed message and those the feeds
   added most.  Exact counts of what the web adds to the node's work, where the relay rate
   of runs on a shared machine varies by 20% between rounds.

With two CPUs or more the relay-rate peers run alone on the last one (``taskset``) and the
sinks, the source and the feeds share the others (``--no-pin``: all share all), so the
feeds' own process does not take the peer's CPU.  Each relay-rate peer's stdout is a pipe
nobody reads: it prints nothing after its first line fails (``--print``: a discarded stdout,
printed to as far as the peer keeps up).  How much a peer prints in a blast varies from run
to run, and it made the runs differ more than the web does.

``bench_hub.py`` measures the hub's own Python on a virtual clock (no load noise); most of what
``-http`` cost a blast here was the collector walking the web's imports (``whisper/heap.py``).

Peers run with ``-no-history``: the history's SQLite writes are the same with or without
the web, and its shared per-user file, grown by every run and held by one peer at a time,
made the runs differ by far more than the web does.

Usage: ``.venv/bin/python bench/bench_web.py [--clients 100] [--rate 500] [--runs 3] [--calls]``
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import pstats
import re
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_relay import Bench, Source, cpu_seconds, start_sink, whisper_peer
from web_report import report

TOKEN = "bench-token"
PY = [sys.executable, "-m", "whisper"]
IDLE_PROFILED = 3.0  # seconds the no-blast run of ``--calls`` stays up
PEER_CPU: int | None = None  # the CPU relay-rate peers run on (``pin``); None: any
_BENCH_BODY = re.compile(r'"Body":"bench (\d+) #')


# -- the feeds (a process of their own) -----------------------------------------------------


def feeds_main(ctl, url: str, count: int) -> None:
    import trio
    from trio_websocket import open_websocket_url

    counts = [0] * count
    frames = [0] * count
    missed = [0]
    latencies: list[int] = []
    ready = [0]

    async def feed(i: int, task_status) -> None:
        auth = [("Authorization", f"Bearer {TOKEN}")]
        async with open_websocket_url(url, extra_headers=auth, max_message_size=1 << 24) as ws:
            first = True
            while True:
                frame = await ws.get_message()
                now = time.monotonic_ns()
                if first:
                    first = False
                    ready[0] += 1
                    task_status.started()
                frames[i] += 1
                counts[i] += frame.count('"Event":"message"')
                if '"Event":"missed"' in frame:
                    missed[0] += 1
                if i % 10 == 0:  # a tenth of the feeds stamp (the others only count)
                    latencies.extend(now - int(t) for t in _BENCH_BODY.findall(frame))

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for i in range(count):
                await nursery.start(feed, i)
            ctl.send(("ready", ready[0]))
            while True:
                cmd = await trio.to_thread.run_sync(ctl.recv)
                if cmd == "reset":
                    counts[:] = [0] * count
                    frames[:] = [0] * count
                    latencies.clear()
                    missed[0] = 0
                    ctl.send("ok")
                elif cmd == "status":
                    ctl.send((list(counts), list(frames), missed[0], list(latencies)))
                else:
                    nursery.cancel_scope.cancel()
                    return

    trio.run(main)


class Feeds:
    def __init__(self, url: str, count: int) -> None:
        self.ctl, theirs = multiprocessing.Pipe()
        ctx = multiprocessing.get_context("spawn")
        self.proc = ctx.Process(target=feeds_main, args=(theirs, url, count), daemon=True)
        self.proc.start()
        if not self.ctl.poll(60):
            raise SystemExit("the feeds did not connect within 60 s")
        tag, n = self.ctl.recv()
        assert tag == "ready" and n == count, (tag, n)

    def ask(self, cmd: str):
        self.ctl.send(cmd)
        return self.ctl.recv()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.ctl.send("stop")
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()


# -- the peer, the sinks, the source ---------------------------------------------------------


class StampedSource(Source):
    def messages(self, n: int) -> bytes:
        self.body = f"bench {time.monotonic_ns()} #"  # Source appends the message's number
        return super().messages(n)


def run_queue_wait(pid: int) -> float:
    """Seconds the process's threads spent runnable but waiting for a CPU (schedstat)."""
    total = 0
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[1])
    return total / 1e9


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Setup:
    """A fresh peer (with or without -http), dialled to the sinks, and its source."""

    def __init__(self, sinks, origin, http: bool, profile: str = "", printing: bool = True) -> None:
        """``printing``: the peer prints the messages it gets to its stdout (a discarded
        one), as many as its headless front end keeps up with, which varies from run to
        run; without it the relay rate compares the web's cost alone."""
        self.http_port = free_port() if http else 0
        py = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "whisper"] if profile else PY
        # No history: every peer would open the same per-user file (grown by every run, and
        # locked by whichever peer has it), a cost that has nothing to do with the web.
        py = [*py, "-no-history"]
        cmd = [*py, "-http", f"127.0.0.1:{self.http_port}"] if http else list(py)
        if PEER_CPU is not None:  # the peer alone on its core (``--pin``)
            cmd = ["taskset", "-c", str(PEER_CPU), *cmd]
        os.environ["WHISPER_HTTP_TOKEN"] = TOKEN
        if printing:
            self.peer = whisper_peer(cmd)
        else:  # a pipe nobody reads: its first line fails (EPIPE) and the peer prints no more
            read_end, write_end = os.pipe()
            os.close(read_end)
            try:
                self.peer = whisper_peer(cmd, stdout=write_end)
            finally:
                os.close(write_end)
        self.source = StampedSource(self.peer.addr, origin.addr)
        self.bench = Bench(self.peer, sinks, origin, self.source)
        for sink in [origin, *sinks]:
            self.source.hello(sink.addr)
        deadline = time.monotonic() + 15
        while not all(st[2] >= 1 for st in self.bench.statuses()):
            if time.monotonic() > deadline:
                raise SystemExit("the peer did not dial every sink within 15 s")
            time.sleep(0.02)
        time.sleep(0.2)

    @property
    def feed_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}/api/feed"

    def close(self) -> None:
        self.source.close()
        self.peer.stop()


def fan_out(sinks, origin, clients: int, rate: float, seconds: float, profile: str) -> None:
    setup = Setup(sinks, origin, http=True, profile=profile)
    feeds = Feeds(setup.feed_url, clients)
    try:
        feeds.ask("reset")
        cpu0, t0 = cpu_seconds(setup.peer.pid), time.monotonic()
        feeds_cpu0 = cpu_seconds(feeds.proc.pid)
        wait0 = run_queue_wait(setup.peer.pid), run_queue_wait(feeds.proc.pid)
        n = setup.source.paced(rate, seconds)
        deadline = time.monotonic() + 10
        while True:
            counts, frames, missed, latencies = feeds.ask("status")
            if min(counts) >= n or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        wall = time.monotonic() - t0
        cpu = (cpu_seconds(setup.peer.pid) - cpu0) / wall
        feeds_cpu = (cpu_seconds(feeds.proc.pid) - feeds_cpu0) / wall
        peer_wait = (run_queue_wait(setup.peer.pid) - wait0[0]) / wall
        feeds_wait = (run_queue_wait(feeds.proc.pid) - wait0[1]) / wall
        latencies.sort()
        q = {
            p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] / 1e6
            for p in (0.5, 0.99)
        }
        every = sum(c >= n for c in counts)
        print(
            f"[fan-out] {clients} feeds, {n} msgs at {rate:.0f}/s relayed to {len(sinks)} sinks: "
            f"{every}/{clients} feeds got every message (min {min(counts)}, max {max(counts)}); "
            f"latency p50 {q[0.5]:.1f} ms p99 {q[0.99]:.1f} ms max {latencies[-1] / 1e6:.1f} ms "
            f"({len(latencies)} samples); frames per feed {statistics.mean(frames):.0f} "
            f"({n / statistics.mean(frames):.1f} msgs a frame); missed events {missed}; "
            f"CPU: peer {cpu:.0%}, feeds {feeds_cpu:.0%}; waiting for a CPU (other load): "
            f"peer {peer_wait:.0%}, feeds {feeds_wait:.0%} of the time; "
            f"load avg {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    finally:
        feeds.stop()
        setup.close()


def relay_rate(sinks, origin, kind: str, feeds_count: int, n: int, printing: bool) -> dict:
    setup = Setup(sinks, origin, http=kind != "no -http", printing=printing)
    feeds = Feeds(setup.feed_url, feeds_count) if kind == "10 feeds" else None
    feeds_cpu, t0 = cpu_seconds(feeds.proc.pid) if feeds else 0.0, time.monotonic()
    try:
        setup.bench.saturation(kind, n)
        return setup.bench.results[kind]
    finally:
        if feeds:
            share = (cpu_seconds(feeds.proc.pid) - feeds_cpu) / (time.monotonic() - t0)
            print(
                f"    feeds got {feeds.ask('status')[0]} message events; the feeds' process "
                f"used {share:.0%} of a core meanwhile",
                flush=True,
            )
            feeds.stop()
        setup.close()


def calls_per_message(sinks, origin, feeds_count: int, n: int, printing: bool) -> None:
    """Python function calls the peer makes per relayed message (cProfile's exact counts):
    what the web adds to the node's work, free of the machine's load.  Each kind runs twice,
    with the blast and without it (started, fed, left idle a few seconds), and the
    difference is divided by ``n``: start-up (the web's imports ...) cancels out."""
    counts: dict[str, Counter] = {}
    with tempfile.TemporaryDirectory(prefix="bench-web-calls-") as tmp:
        for kind in ("no -http", "-http, no feed", "10 feeds"):
            runs = []
            for blast in (True, False):
                out = os.path.join(tmp, f"{len(counts)}-{blast}.prof")
                http = kind != "no -http"
                setup = Setup(sinks, origin, http=http, profile=out, printing=printing)
                feeds = Feeds(setup.feed_url, feeds_count) if kind == "10 feeds" else None
                try:
                    if blast:
                        setup.bench.saturation(f"{kind}, cProfile", n)
                    else:
                        time.sleep(IDLE_PROFILED)
                finally:
                    if feeds:
                        feeds.stop()
                    setup.close()  # SIGTERM: the peer exits normally and cProfile writes
                runs.append(Counter({_site(f): v[1] for f, v in pstats.Stats(out).stats.items()}))
            runs[0].subtract(runs[1])
            counts[kind] = runs[0]
    base = counts["no -http"].total()
    print(f"\nPython function calls per relayed message (cProfile, {n:,} messages, exact):")
    for kind, by_function in counts.items():
        total = by_function.total()
        print(f"  {kind:16} {total / n:7.2f} ({total / base - 1:+.1%})")
    print("  of which printing to stdout (the headless front end, a share that depends on timing):")
    for kind, by_function in counts.items():
        headless = {f: v for f, v in by_function.items() if "whisper/headless.py:" in f}
        lines = sum(v for f, v in headless.items() if f.endswith(" format_line"))
        calls = sum(headless.values())
        print(f"  {kind:16} {lines / n:5.1%} of the messages printed, {calls / n:5.2f} calls")
    added = counts["10 feeds"].copy()
    added.subtract(counts["-http, no feed"])
    print("  most calls added by the feeds (per relayed message):")
    for function, more in added.most_common(5):
        print(f"    {more / n:+.3f}  {function}")


def _site(function: tuple) -> str:
    """A profiled function's name, the same in every process (no object addresses)."""
    path, line, name = function
    return f"{path.rsplit('site-packages/', 1)[-1]}:{line} {re.sub(r' at 0x[0-9a-f]+', '', name)}"


def pin(sinks) -> None:
    """The relay-rate peers alone on the last CPU; the sinks, the source and the feeds (started
    from here later) on the others.  Not for the fan-out: its hundred feeds need a core."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return
    global PEER_CPU
    PEER_CPU = cpus[-1]
    for pid in [0, *(sink.pid() for sink in sinks)]:
        if pid is not None:
            os.sched_setaffinity(pid, cpus[:-1])
    print(f"relay-rate peers pinned to CPU {PEER_CPU}; sinks, source and feeds on {cpus[:-1]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--rate", type=float, default=500)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--feeds", type=int, default=10)
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--skip-fan-out", action="store_true")
    p.add_argument("--skip-relay", action="store_true")
    p.add_argument(
        "--calls", action="store_true", help="count the peer's Python calls per message instead"
    )
    p.add_argument("--profile", default="", metavar="FILE", help="cProfile the fan-out's peer")
    p.add_argument(
        "--print",
        action="store_true",
        help="relay-rate peers print what they get (to a discarded stdout), as far as they keep up",
    )
    p.add_argument(
        "--no-pin",
        action="store_true",
        help="let the peer share CPUs with the sinks, the source and the feeds",
    )
    args = p.parse_args()
    origin = start_sink("origin", "process")
    sinks = [start_sink(f"sink{i}", "process") for i in range(4)]
    try:
        if not args.skip_fan_out:
            fan_out(sinks, origin, args.clients, args.rate, args.seconds, args.profile)
        if not args.no_pin:
            pin([*sinks, origin])
        if args.calls:
            calls_per_message(sinks, origin, args.feeds, args.messages, args.print)
        if args.skip_relay or args.calls:
            return
        kinds = ["no -http", "-http, no feed", "10 feeds"]
        results: dict[str, list[dict]] = {k: [] for k in kinds}
        for _ in range(args.runs):
            for kind in kinds:
                run = relay_rate(sinks, origin, kind, args.feeds, args.messages, args.print)
                results[kind].append(run)
        report(results, args.runs)
    finally:
        for sink in [*sinks, origin]:
            with contextlib.suppress(OSError):
                sink.ctl.send(("stop",))
            sink.runner.join(2)


if __name__ == "__main__":
    main()
