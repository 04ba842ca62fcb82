"""Relay benchmark: one real ``whisper`` peer, one source blasting, K sinks it has dialled.

Set-up (127.0.0.1 only): the bench starts K sink listeners plus one *origin* listener (by
default each in its own process, ``--sinks process``; ``--sinks thread`` runs them as threads
of this process, to see whether the bench itself is the bottleneck), then one peer process
(``.venv/bin/whisper -host 127.0.0.1 -port 0 -headless``, stdin kept open, stdout discarded,
plus ``-no-discovery``, ``-no-flood-control`` and ``-no-history`` when the peer has them: no
LAN announcements, no rate limit on the one source, no history store (the Go peer keeps
none); ``--flood-control`` keeps the limits on, ``--history`` the store).
It connects a *source* TCP stream to the peer and sends one hello message per listener whose
``Addr`` is that listener, so the peer dials all of them.  Every benchmark message then
carries the origin's ``Addr``: the peer relays it to the K sinks and not back to its origin,
exactly as for a message from a peer it is connected to.  Messages are ~150 bytes, with a
unique random ID, a current millisecond ``Timestamp`` and an extra key ``BenchT`` (send time,
``time.monotonic_ns()``, which is system-wide on Linux) that the peer relays untouched.

Phases, each printed as it ends, then a summary table:

1. **latency (idle)**: ``--rate`` msgs/s (200) for ``--latency-seconds``, one message per
   write; each sink stamps every arrival, giving one latency sample per message per sink.
2. **saturation**: ``--messages`` (300,000) unique messages written as fast as the peer reads
   them.  Relayed msgs/s = messages that reached *every* sink / time from the first write to
   the last arrival ("end to end"), and between the 10% and 90% marks ("steady").  The
   aggregate delivery rate is K times that.  "peer CPU us/msg" (the peer's user+system CPU
   over the phase / messages relayed) is the figure least disturbed by other load on a shared
   machine: compare builds with it, not with msgs/s.  CPU use of the peer, the sinks and this
   process over the phase shows which one was the bottleneck (100% = one core).
3. **latency (after)**: phase 1 again, with the seen cache now holding the blast.
4. **sustain** (``--sustain N``, off by default): N more messages, to show whether RSS stays
   flat once the seen cache reaches its cap (500,000 IDs) or TTL, printed per 100k.  With
   ``--sustain-without-timestamp`` they carry no ``Timestamp``: the peer then deduplicates by
   ID alone, and the freshness window (which narrows when the cap makes the cache forget
   early) cannot make it refuse them.

The peer's VmRSS is sampled every 0.25 s throughout; printed: after start-up, after
``--messages`` unique messages, and every 100k messages of the sustain phase.  Warnings the
peer logs (e.g. "dropping messages for ...") are counted.  ``--peer-cmd`` runs another build of the
peer (e.g. a scratch copy: ``"env PYTHONPATH=/tmp/whisper-exp .venv/bin/python -m whisper"``).

``--signed`` sends our peer signed messages (extension 13; the Go peer, with ``--go``,
unsigned ones) and, with ``--go``, prints the issue 11 target: whisper's signed relay rate
against the Go peer's unsigned one in the same run.  The CPU of the peer's children (its
signature verifiers, ``whisper/verifier.py``) is measured beside the peer's own.

``--go PATH`` then runs the same phases, with fresh sinks, on the Go reference peer at PATH (a
binary you built; ``-port 0 -http 127.0.0.1:0``) and prints both runs side by side with the
ratio whisper/Go of each number.  The Go peer binds the first non-loopback IPv4 address and
broadcasts at start, so the whole run (sinks, source and both peers) happens in a network
namespace made for it (``go_peer_lab.py``, root only).  The Go peer strips unknown keys, so in
that run both peers get the send time at the end of the ``Body`` (``BenchT=...``) instead of
in a ``BenchT`` key.  It also relays every message back to its origin (so it writes K + 1
copies of each: compare CPU per delivery too), and writes each copy with its own syscall.
Targets from issue 2: relay >= 25,000 msgs/s to 4 sinks, p99 <= 2 ms at 200 msgs/s, RSS <=
100 MB after 300k unique messages and flat under sustained load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import re
import secrets
import selectors
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import go_peer_lab

from whisper.identity import Identity, sign

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
MARK_EVERY = 5_000  # sinks note the time each time their count crosses a multiple of this
_STAMP = re.compile(rb'BenchT(?:":|=)(\d+)')  # the BenchT key, or "BenchT=" in the Body


# -- sinks -------------------------------------------------------------------------------


def sink_main(ctl: multiprocessing.connection.Connection) -> None:
    """A listener the peer dials.  Counts newline-terminated messages; stamps arrivals.

    Commands on ``ctl``: ("reset", stamp: bool), ("status",), ("latencies",), ("stop",).
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    listener.listen(16)
    listener.setblocking(False)
    ctl.send(("port", listener.getsockname()[1]))
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "listen")
    sel.register(ctl, selectors.EVENT_READ, "ctl")
    count = 0
    nbytes = 0
    conns = 0
    first_ns = last_ns = 0
    stamp = False
    tail = b""
    latencies: list[int] = []
    marks: list[tuple[int, int]] = []
    next_mark = MARK_EVERY
    monotonic_ns = time.monotonic_ns
    try:
        while True:
            for key, _ in sel.select():
                what = key.data
                if what == "listen":
                    conn, _ = listener.accept()
                    conn.setblocking(False)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
                    sel.register(conn, selectors.EVENT_READ, "conn")
                    conns += 1
                elif what == "ctl":
                    cmd = ctl.recv()
                    if cmd[0] == "reset":
                        count = nbytes = first_ns = last_ns = 0
                        stamp = cmd[1]
                        tail = b""
                        latencies = []
                        marks = []
                        next_mark = MARK_EVERY
                        ctl.send(("ok",))
                    elif cmd[0] == "status":
                        ctl.send((count, nbytes, conns, first_ns, last_ns, marks))
                    elif cmd[0] == "latencies":
                        ctl.send(latencies)
                    elif cmd[0] == "stop":
                        return
                else:
                    sock: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = sock.recv(1 << 20)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        sel.unregister(sock)
                        sock.close()
                        conns -= 1
                        continue
                    now = monotonic_ns()
                    if not first_ns:
                        first_ns = now
                    last_ns = now
                    nbytes += len(data)
                    count += data.count(b"\n")
                    if count >= next_mark:
                        marks.append((count, now))
                        next_mark = (count // MARK_EVERY + 1) * MARK_EVERY
                    if stamp:
                        data = tail + data
                        cut = data.rfind(b"\n") + 1
                        tail = data[cut:]
                        latencies.extend(now - int(m) for m in _STAMP.findall(data, 0, cut))
    finally:
        sel.close()
        listener.close()


@dataclass
class Sink:
    name: str
    ctl: multiprocessing.connection.Connection
    runner: Any  # multiprocessing.Process or threading.Thread
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def addr(self) -> str:
        return f"{HOST}:{self.port}"

    def ask(self, *cmd: Any) -> Any:
        with self.lock:
            self.ctl.send(cmd)
            return self.ctl.recv()

    def pid(self) -> int | None:
        return getattr(self.runner, "pid", None)


def start_sink(name: str, mode: str) -> Sink:
    ours, theirs = multiprocessing.Pipe()
    runner: Any
    if mode == "process":
        runner = multiprocessing.get_context("spawn").Process(
            target=sink_main, args=(theirs,), name=name, daemon=True
        )
    else:
        runner = threading.Thread(target=sink_main, args=(theirs,), name=name, daemon=True)
    runner.start()
    sink = Sink(name, ours, runner)
    tag, sink.port = ours.recv()
    assert tag == "port"
    return sink


# -- the peer under test -------------------------------------------------------------------


class Peer:
    """The peer under test: started, watched (stderr, RSS, CPU) and always killed.

    ``listening`` finds its address in a line of its stderr; a line containing one of
    ``warn`` counts as a warning.  ``stdout``: where its standard output goes (a pipe for
    a peer that must print to one as it would to a reader).
    """

    def __init__(
        self,
        cmd: list[str],
        listening: str = r"listening on (\S+)",
        warn: tuple[str, ...] = (" WARNING ", " ERROR ", "Traceback"),
        stdout: int = subprocess.DEVNULL,
    ) -> None:
        is_whisper = any(part == "whisper" or part.endswith("/whisper") for part in cmd)
        if is_whisper and "-host" not in cmd:  # it would bind every interface
            raise ValueError(f"{cmd}: start whisper with -host 127.0.0.1 (whisper_peer)")
        self.cmd = cmd
        self.warn = warn
        self.proc = subprocess.Popen(
            self.cmd,
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=subprocess.PIPE,
            cwd=tempfile.gettempdir(),  # so that "python -m whisper" never imports ./whisper
            start_new_session=True,
        )
        self.addr = ""
        self.warnings: list[str] = []
        self.stderr_lines = 0
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline().decode("utf-8", "replace")
            if not line:
                raise SystemExit(f"peer exited before listening: {self.cmd}")
            match = re.search(listening, line)
            if match:
                self.addr = match.group(1)
                break
        if not self.addr:
            raise SystemExit(f"peer did not print {listening!r}")
        threading.Thread(target=self._drain, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.stderr_lines += 1
            line = raw.decode("utf-8", "replace").rstrip()
            if any(mark in line for mark in self.warn):
                self.warnings.append(line)

    def rss(self) -> int:
        return read_status(self.pid, "VmRSS")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdin:
            self.proc.stdin.close()


def whisper_peer(
    cmd: list[str],
    flood_control: bool = False,
    history: bool = False,
    stdout: int = subprocess.DEVNULL,
) -> Peer:
    """whisper on 127.0.0.1, headless, with the flags newer builds have to stay quiet."""
    # Never announce on the LAN (127.0.0.1 only); flood control off unless asked for,
    # since one source blasting is exactly what it cuts off; no history store unless asked
    # for (the Go peer keeps none; bench_history.py measures what it costs).
    usage = subprocess.run(
        [*cmd, "--help"], capture_output=True, text=True, cwd=tempfile.gettempdir()
    ).stdout
    extra = [flag for flag in ("-no-discovery",) if flag in usage]
    if not flood_control and "-no-flood-control" in usage:
        extra.append("-no-flood-control")
    if not history and "-no-history" in usage:
        extra.append("-no-history")
    return Peer([*cmd, "-host", HOST, "-port", "0", "-headless", *extra], stdout=stdout)


def go_peer(binary: str) -> Peer:
    """The Go reference peer: it binds the namespace's LAN address; HTTP on its loopback."""
    return Peer(
        [binary, "-port", "0", "-http", f"{HOST}:0"],
        listening=r"Listening on (\S+)",
        warn=("panic", "disconnected with"),
    )


def read_status(pid: int, key: str) -> int:
    """A ``kB`` field of /proc/<pid>/status, in bytes (0 if the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (whisper's signature verifier, ``verifier.py``)."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    return out


def children_cpu(pid: int) -> float:
    return sum(cpu_seconds(c) for c in children(pid))


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU seconds of a process (all its threads), or of one of its threads
    (``thread``: its id; the process's own id is its main thread, the event loop)."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# -- the source ----------------------------------------------------------------------------


class Source:
    """One TCP stream into the peer; writes unique ~150-byte messages."""

    def __init__(
        self,
        peer_addr: str,
        origin_addr: str,
        lab_ip: str | None = None,
        stamp_in_body=False,
        signed=False,
    ) -> None:
        host, port = peer_addr.rsplit(":", 1)
        assert host in (HOST, lab_ip), f"{peer_addr}: not 127.0.0.1 nor the lab's address"
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
        self.origin = origin_addr
        self.prefix = secrets.token_hex(4)
        self.sent = 0
        self.body = "lazy dog jumps over #"
        self.timestamps = True  # False: messages carry no Timestamp (deduplicated by ID only)
        self.stamp_in_body = stamp_in_body  # for peers that strip unknown keys (the Go peer)
        self.signer = Identity.generate() if signed else None  # --signed: Key and Sig
        self._pool: list[bytes] = []  # signed messages made ahead (presign)

    def presign(self, n: int) -> float:
        """Sign the next ``n`` messages ahead, so that signing does not slow the source down
        during the phase; returns the seconds it took."""
        start = time.monotonic()
        self._pool = self._signed(n, self.sent)
        return time.monotonic() - start

    def _signed(self, n: int, start: int) -> list[bytes]:
        assert self.signer is not None
        stamp = int(time.time() * 1000)
        out = []
        for i in range(start, start + n):
            fields = {"ID": f"{self.prefix}{i:08x}", "Addr": self.origin, "Nick": "src"}
            fields["Body"] = f"{self.body}{i}"
            if self.timestamps:
                fields["Timestamp"] = stamp
            wire = sign(self.signer, fields)
            wire["BenchT"] = time.monotonic_ns()  # not signed: stamped when made
            out.append(json.dumps(wire, separators=(",", ":")).encode() + b"\n")
        return out

    def hello(self, addr: str) -> None:
        stamp = int(time.time() * 1000)
        self.sock.sendall(
            (
                f'{{"ID":"hello-{self.prefix}-{addr}","Addr":"{addr}","Body":"hello",'
                f'"Timestamp":{stamp}}}\n'
            ).encode()
        )

    def messages(self, n: int) -> bytes:
        """``n`` new unique messages, stamped now (signed ones: when ``presign`` made them)."""
        if self.signer is not None:
            start, self.sent = self.sent, self.sent + n
            taken, self._pool = self._pool[:n], self._pool[n:]
            return b"".join(taken + self._signed(n - len(taken), start + len(taken)))
        stamp = int(time.time() * 1000)
        t = time.monotonic_ns()
        start = self.sent
        self.sent += n
        head = f'{{"ID":"{self.prefix}'
        mid = f'","Addr":"{self.origin}","Body":"{self.body}'
        stamped = f',"Timestamp":{stamp}' if self.timestamps else ""
        if self.stamp_in_body:
            tail = f' BenchT={t}","Nick":"src"{stamped}}}\n'
        else:
            tail = f'","Nick":"src"{stamped},"BenchT":{t}}}\n'
        return "".join(f"{head}{i:08x}{mid}{i}{tail}" for i in range(start, start + n)).encode()

    def blast(self, n: int, batch: int = 400, on_batch: Callable[[], None] | None = None) -> None:
        left = n
        while left:
            k = min(batch, left)
            self.sock.sendall(self.messages(k))
            left -= k
            if on_batch:
                on_batch()

    def paced(self, rate: float, seconds: float) -> int:
        n = int(rate * seconds)
        start = time.monotonic()
        for i in range(n):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.sock.sendall(self.messages(1))
        return n

    def close(self) -> None:
        self.sock.close()


# -- the phases ----------------------------------------------------------------------------


@dataclass
class Bench:
    peer: Peer
    sinks: list[Sink]
    origin: Sink
    source: Source
    rss_samples: list[tuple[float, int]] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)
    results: dict[str, Any] = field(default_factory=dict)

    def reset(self, stamp: bool) -> None:
        for sink in self.sinks:
            sink.ask("reset", stamp)

    def statuses(self) -> list[tuple[int, int, int, int, int, list[tuple[int, int]]]]:
        return [sink.ask("status") for sink in self.sinks]

    def wait_delivered(self, n: int, quiet: float = 2.0) -> list[Any]:
        """Until every sink has n messages, or nothing arrives for ``quiet`` seconds."""
        last_total = -1
        last_change = time.monotonic()
        while True:
            st = self.statuses()
            total = sum(s[0] for s in st)
            if all(s[0] >= n for s in st):
                return st
            if total != last_total:
                last_total, last_change = total, time.monotonic()
            elif time.monotonic() - last_change > quiet:
                return st
            time.sleep(0.02)

    def latency(self, label: str, rate: float, seconds: float) -> None:
        self.reset(stamp=True)
        n = self.source.paced(rate, seconds)
        self.wait_delivered(n, quiet=1.0)
        samples: list[int] = []
        for sink in self.sinks:
            samples.extend(sink.ask("latencies"))
        samples.sort()
        got = len(samples)
        if not samples:
            print(f"[{label}] no samples!")
            return
        q = _quantiles(samples)
        self.results[label] = {"n": n, "samples": got, **q}
        print(
            f"[{label}] {n} msgs at {rate:.0f}/s -> {got} arrivals "
            f"(expected {n * len(self.sinks)}): "
            f"p50 {q['p50']:.3f} ms  p90 {q['p90']:.3f}  p99 {q['p99']:.3f}  "
            f"p99.9 {q['p99.9']:.3f}  max {q['max']:.3f} ms",
            flush=True,
        )

    def saturation(self, label: str, n: int) -> None:
        self.reset(stamp=False)
        pids = {"peer": self.peer.pid}
        sink_pids = [p for p in (s.pid() for s in [*self.sinks, self.origin]) if p]
        cpu0 = {k: cpu_seconds(v) for k, v in pids.items()}
        child_cpu0 = children_cpu(self.peer.pid)
        loop0 = cpu_seconds(self.peer.pid, self.peer.pid)
        sinks_cpu0 = sum(cpu_seconds(p) for p in sink_pids)
        self_cpu0 = cpu_seconds(os.getpid())
        start_ns = time.monotonic_ns()
        self.source.blast(n)
        sent_ns = time.monotonic_ns()
        st = self.wait_delivered(n)
        if not any(s[0] for s in st):
            self.results[label] = {"n": n, "min_delivered": 0, "rss": self.peer.rss()}
            print(
                f"[{label}] {n:,} msgs: NOTHING reached the sinks (see the peer's warnings); "
                f"peer RSS {self.peer.rss() / 1e6:.1f} MB",
                flush=True,
            )
            return
        wall = (max(s[4] for s in st) - start_ns) / 1e9
        peer_cpu = cpu_seconds(self.peer.pid) - cpu0["peer"]
        child_cpu = children_cpu(self.peer.pid) - child_cpu0
        loop_cpu = cpu_seconds(self.peer.pid, self.peer.pid) - loop0
        sinks_cpu = sum(cpu_seconds(p) for p in sink_pids) - sinks_cpu0
        self_cpu = cpu_seconds(os.getpid()) - self_cpu0
        got = [s[0] for s in st]
        everywhere = min(got)
        steady = _steady_rate([s[5] for s in st], n)
        res = {
            "n": n,
            "min_delivered": everywhere,
            "delivered": got,
            "e2e_rate": everywhere / wall,
            "steady_rate": steady,
            "wall": wall,
            "send_wall": (sent_ns - start_ns) / 1e9,
            "peer_cpu": peer_cpu / wall,
            "peer_us_per_msg": peer_cpu / everywhere * 1e6,
            "child_cpu": child_cpu / wall,
            "child_us_per_msg": child_cpu / everywhere * 1e6,
            "peer_loop_us_per_msg": loop_cpu / everywhere * 1e6,  # its main thread's
            "sinks_cpu": sinks_cpu / wall,
            "self_cpu": self_cpu / wall,
            "rss": self.peer.rss(),
        }
        self.results[label] = res
        print(
            f"[{label}] {n:,} msgs: every sink got {everywhere:,} (per sink {got}); "
            f"{res['e2e_rate']:,.0f} msgs/s end to end over {wall:.2f}s, steady "
            f"{steady:,.0f} msgs/s; x{len(self.sinks)} = {res['e2e_rate'] * len(self.sinks):,.0f} "
            f"deliveries/s; peer CPU {res['peer_us_per_msg']:.1f} us/msg "
            f"(event loop {res['peer_loop_us_per_msg']:.1f}, "
            f"+ its children {res['child_us_per_msg']:.1f}); "
            f"CPU peer {res['peer_cpu']:.0%} (children {res['child_cpu']:.0%}) "
            f"sinks {res['sinks_cpu']:.0%} "
            f"bench {res['self_cpu']:.0%}; load avg {os.getloadavg()[0]:.2f}; "
            f"peer RSS {res['rss'] / 1e6:.1f} MB",
            flush=True,
        )

    def sample_rss(self, stop: threading.Event, every: float = 0.25) -> None:
        while not stop.wait(every):
            self.rss_samples.append((time.monotonic() - self.t0, self.peer.rss()))

    def sustain(self, n: int, step: int = 100_000, timestamps: bool = True) -> None:
        done = 0
        self.source.timestamps = timestamps
        print(
            f"[sustain] {n:,} more messages{'' if timestamps else ' WITHOUT Timestamp'}, "
            f"RSS every {step:,}:",
            flush=True,
        )
        while done < n:
            k = min(step, n - done)
            self.saturation(f"sustain {self.source.sent:,}+{k:,}", k)
            done += k


def _quantiles(sorted_ns: list[int]) -> dict[str, float]:
    def q(p: float) -> float:
        i = min(len(sorted_ns) - 1, int(p * len(sorted_ns)))
        return sorted_ns[i] / 1e6

    return {
        "p50": q(0.50),
        "p90": q(0.90),
        "p99": q(0.99),
        "p99.9": q(0.999),
        "max": sorted_ns[-1] / 1e6,
    }


def _steady_rate(all_marks: list[list[tuple[int, int]]], n: int) -> float:
    """Messages/s between the 10% and 90% marks of the slowest sink."""
    rates = []
    for marks in all_marks:
        inner = [(c, t) for c, t in marks if 0.1 * n <= c <= 0.9 * n]
        if len(inner) >= 2:
            (c0, t0), (c1, t1) = inner[0], inner[-1]
            rates.append((c1 - c0) / ((t1 - t0) / 1e9))
    return min(rates) if rates else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(
        description="Relay rate, latency and RSS of one whisper peer relaying to K sinks "
        "(127.0.0.1 only; with --go, inside a network namespace of its own)."
    )
    p.add_argument("-k", "--sinks-count", type=int, default=4, help="sinks the peer dials (4)")
    p.add_argument(
        "--sinks",
        choices=["process", "thread"],
        default="process",
        help="run each sink in its own process (default) or as a thread of the bench",
    )
    p.add_argument("--messages", type=int, default=300_000, help="saturation messages (300000)")
    p.add_argument("--rate", type=float, default=200.0, help="paced rate for latency (200/s)")
    p.add_argument(
        "--latency-seconds", type=float, default=8.0, help="length of each latency phase (8 s)"
    )
    p.add_argument(
        "--sustain", type=int, default=0, help="messages after the saturation phase, for RSS (0)"
    )
    p.add_argument(
        "--sustain-without-timestamp",
        action="store_true",
        help="sustain-phase messages carry no Timestamp, so the freshness window cannot "
        "refuse them (shows RSS at the seen cache's cap)",
    )
    p.add_argument(
        "--peer-cmd",
        default=str(REPO / ".venv" / "bin" / "whisper"),
        help="command that runs the peer (flags are appended); default the repo's venv",
    )
    p.add_argument(
        "--flood-control",
        action="store_true",
        help="leave the peer's flood control on (default: -no-flood-control when it has it)",
    )
    p.add_argument(
        "--history",
        action="store_true",
        help="leave the peer's history store on (default: -no-history when it has it)",
    )
    p.add_argument(
        "--py-spy",
        metavar="OUT",
        help="record the peer with py-spy during the saturation phase (needs py-spy on PATH "
        "or in the venv); OUT.txt gets collapsed stacks",
    )
    p.add_argument(
        "--go",
        metavar="PATH",
        help="then run the same phases on the Go reference peer at PATH (a binary you built) "
        "and print both side by side; the whole run happens in a network namespace made for "
        "it (needs root and iproute2)",
    )
    p.add_argument(
        "--signed",
        action="store_true",
        help="our peer is sent signed messages (extension 13: Key, Sig; each one verified), "
        "signed ahead of the saturation phase; the Go peer, with --go, unsigned ones",
    )
    p.add_argument("--inside", metavar="NS", help=argparse.SUPPRESS)  # set by the --go re-run
    args = p.parse_args()

    if args.go and not args.inside:
        raise SystemExit(go_peer_lab.rerun_inside(Path(__file__), sys.argv[1:]))
    if args.go and not go_peer_lab.inside(args.inside):
        raise SystemExit(f"not inside the namespace {args.inside}: never run the Go peer here")

    cmd = shlex.split(args.peer_cmd)
    ours = measure(
        "whisper",
        lambda: whisper_peer(cmd, args.flood_control, args.history),
        args,
        args.py_spy,
        bool(args.go),
        signed=args.signed,
    )
    if not args.go:
        _print_table([("value", _rows(ours, args))])
        _print_rss_samples(ours.bench)
        return
    go = measure("Go", lambda: go_peer(args.go), args, None, True, go_peer_lab.LAB_IP)
    _print_table([("whisper", _rows(ours, args)), ("Go", _rows(go, args))], ratio=True)
    if args.signed:
        _print_signed_target(ours, go)
    for name, run in (("whisper", ours), ("Go", go)):
        for line in run.bench.peer.warnings[:5]:
            print(f"  {name} peer:", line)


@dataclass
class Run:
    """What ``measure`` saw of one peer."""

    bench: Bench
    rss_start: int = 0
    sent_at_rss: int = 0
    rss_after: int = 0
    rss_end: int = 0
    origin_count: int = 0


def measure(
    name: str,
    start_peer: Callable[[], Peer],
    args: argparse.Namespace,
    py_spy: str | None = None,
    stamp_in_body: bool = False,
    lab_ip: str | None = None,
    signed: bool = False,
) -> Run:
    """Sinks, the peer, the source and every phase; all of them stopped on the way out."""
    sinks: list[Sink] = []
    origin: Sink | None = None
    peer: Peer | None = None
    source: Source | None = None
    stop = threading.Event()
    spy: subprocess.Popen[bytes] | None = None
    try:
        origin = start_sink("origin", args.sinks)
        sinks = [start_sink(f"sink{i}", args.sinks) for i in range(args.sinks_count)]
        peer = start_peer()
        print(
            f"{name}: peer pid {peer.pid} at {peer.addr}: {' '.join(peer.cmd)}\n"
            f"{len(sinks)} sinks (each a {args.sinks}) + origin; CPUs: {os.cpu_count()}; "
            f"load avg {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        source = Source(peer.addr, origin.addr, lab_ip, stamp_in_body, signed)
        run = Run(Bench(peer, sinks, origin, source))
        bench = run.bench
        for sink in [origin, *sinks]:
            source.hello(sink.addr)
        deadline = time.monotonic() + 15
        while not all(st[2] >= 1 for st in bench.statuses()) or origin.ask("status")[2] < 1:
            if time.monotonic() > deadline:
                raise SystemExit("the peer did not dial every sink within 15 s")
            time.sleep(0.02)
        time.sleep(0.2)  # let the hellos drain before counting
        origin.ask("reset", False)
        run.rss_start = peer.rss()
        print(f"all {len(sinks)} sinks dialled; peer RSS {run.rss_start / 1e6:.1f} MB", flush=True)
        sampler = threading.Thread(target=bench.sample_rss, args=(stop,), daemon=True)
        sampler.start()

        try:
            bench.latency("latency idle", args.rate, args.latency_seconds)
            if py_spy:
                spy = _start_py_spy(peer.pid, py_spy)
            if source.signer is not None:
                took = source.presign(args.messages)
                print(f"signed {args.messages:,} messages ahead in {took:.1f}s", flush=True)
            bench.saturation("saturation", args.messages)
            if spy:
                _stop_py_spy(spy)
                spy = None
            run.rss_after = peer.rss()
            run.sent_at_rss = source.sent
            bench.latency("latency after", args.rate, args.latency_seconds)
            if args.sustain:
                bench.sustain(args.sustain, timestamps=not args.sustain_without_timestamp)
        except OSError as exc:  # e.g. the peer's flood control cut the source off
            print(f"the peer closed the source connection after {source.sent:,} messages: {exc}")
            for line in peer.warnings[-5:]:
                print("  peer:", line)
            raise SystemExit(1) from None
        stop.set()
        run.origin_count = origin.ask("status")[0]
        run.rss_end = peer.rss()
        return run
    finally:
        stop.set()
        if spy:
            _stop_py_spy(spy)
        if source:
            source.close()
        if peer:
            peer.stop()
        for sink in [*sinks, *([origin] if origin else [])]:
            with contextlib.suppress(OSError):
                sink.ctl.send(("stop",))
            sink.runner.join(2)
            if (
                isinstance(sink.runner, multiprocessing.process.BaseProcess)
                and sink.runner.is_alive()
            ):
                sink.runner.kill()


def _start_py_spy(pid: int, out: str) -> subprocess.Popen[bytes]:
    found = [
        e for e in (REPO / ".venv" / "bin", Path(sys.executable).parent) if (e / "py-spy").exists()
    ]
    cmd = [
        str(found[0] / "py-spy") if found else "py-spy",
        "record",
        "--pid",
        str(pid),
        "--format",
        "raw",
        "--rate",
        "250",
        "--output",
        out + ".txt",
        "--nonblocking",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # let it attach
    return proc


def _stop_py_spy(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Row:
    label: str
    text: str  # the value as printed
    target: str = ""
    value: float | None = None  # the number two runs are compared by


def _rows(run: Run, args: argparse.Namespace) -> list[Row]:
    """The summary of one run; two runs of the same arguments give the same labels."""
    bench = run.bench
    sat = bench.results.get("saturation", {})
    k = len(bench.sinks)
    rate, steady = sat.get("e2e_rate", 0.0), sat.get("steady_rate", 0.0)
    us = sat.get("peer_us_per_msg", float("nan"))
    copies = k + run.origin_count / max(1, bench.source.sent)  # the Go peer echoes each one
    rows = [
        Row("relay rate to all sinks, end to end", f"{rate:,.0f} msgs/s", ">= 25,000", rate),
        Row("relay rate to all sinks, steady 10-90%", f"{steady:,.0f} msgs/s", "", steady),
        Row(f"deliveries (x{k} sinks), end to end", f"{rate * k:,.0f} msgs/s", "", rate * k),
        Row(
            "messages lost (min over sinks)",
            f"{sat.get('n', 0) - sat.get('min_delivered', 0):,} of {sat.get('n', 0):,}",
            "0",
        ),
        Row(
            "peer CPU time per relayed message",
            f"{us:.1f} us = {1e6 / us:,.0f}/s/core",
            "",
            us,
        ),
        Row(
            "CPU of the peer's children per message (verifier)",
            f"{sat.get('child_us_per_msg', 0.0):.1f} us",
            "",
            sat.get("child_us_per_msg"),
        ),
        Row(
            "peer CPU per copy written (echoes to origin too)",
            f"{us / copies:.1f} us",
            "",
            us / copies,
        ),
        Row(
            "CPU peer / sinks / bench in saturation",
            f"{sat.get('peer_cpu', 0):.0%} / {sat.get('sinks_cpu', 0):.0%} "
            f"/ {sat.get('self_cpu', 0):.0%}",
        ),
    ]
    for label in ("latency idle", "latency after"):
        lat = bench.results.get(label)
        rows.append(
            Row(
                f"{label}: p50 / p99 / max ({args.rate:.0f}/s)",
                f"{lat['p50']:.2f} / {lat['p99']:.2f} / {lat['max']:.2f} ms" if lat else "n/a",
                "p99 <= 2 ms",
                lat["p99"] if lat else None,
            )
        )
    mb = 1e6
    max_rss = max((s for _, s in bench.rss_samples), default=0)
    return [
        *rows,
        Row("peer RSS after start-up", f"{run.rss_start / mb:.1f} MB", "", run.rss_start / mb),
        Row(
            f"peer RSS after {run.sent_at_rss:,} unique msgs",
            f"{run.rss_after / mb:.1f} MB",
            "<= 100 MB",
            run.rss_after / mb,
        ),
        Row("peer RSS at end", f"{run.rss_end / mb:.1f} MB", "flat", run.rss_end / mb),
        Row("peer RSS max over run", f"{max_rss / mb:.1f} MB", "", max_rss / mb),
        Row("unique messages sent in total", f"{bench.source.sent:,}"),
        Row("relayed back to the origin after set-up", f"{run.origin_count:,}", "0"),
        Row("peer warnings logged", f"{len(bench.peer.warnings)}"),
    ]


def _print_table(columns: list[tuple[str, list[Row]]], ratio: bool = False) -> None:
    """One value column per run; with ``ratio``, the first run's numbers over the second's."""
    first = columns[0][1]
    width = max(len(row.label) for row in first)
    head = "".join(f"  {name:>24}" for name, _ in columns)
    print()
    last_head = f"{columns[0][0]}/{columns[1][0]}" if ratio else "target"
    print(f"{'metric':<{width}}{head}  {last_head}")
    print("-" * (width + 26 * len(columns) + 12))
    for i, row in enumerate(first):
        values = "".join(f"  {rows[i].text:>24}" for _, rows in columns)
        last = row.target
        if ratio:
            a, b = row.value, columns[1][1][i].value
            last = f"{a / b:.2f}" if a is not None and b else ""
        print(f"{row.label:<{width}}{values}  {last}")
    if ratio:
        print(f"(ratio: {columns[0][0]}'s number over {columns[1][0]}'s; latency rows: p99)")


def _print_signed_target(ours: Run, go: Run) -> None:
    """Issue 11's target: whisper relaying signed traffic at least as fast as the Go peer
    relays unsigned traffic, in the same run."""
    a, b = (r.bench.results.get("saturation", {}) for r in (ours, go))
    rate, go_rate = a.get("e2e_rate", 0.0), b.get("e2e_rate", 0.0)
    cpu = a.get("peer_us_per_msg", 0.0) + a.get("child_us_per_msg", 0.0)
    verdict = "met" if rate >= go_rate else "NOT met"
    print(
        f"signed relay (whisper) {rate:,.0f} msgs/s vs unsigned relay (Go) {go_rate:,.0f} msgs/s"
        f" in the same run: {rate / go_rate if go_rate else 0:.2f}x, target {verdict};"
        f" whisper's CPU per signed message {cpu:.1f} us (event loop"
        f" {a.get('peer_us_per_msg', 0.0):.1f} + verifiers {a.get('child_us_per_msg', 0.0):.1f}),"
        f" Go's per unsigned one {b.get('peer_us_per_msg', 0.0):.1f} us"
    )


def _print_rss_samples(bench: Bench) -> None:
    for line in bench.peer.warnings[:5]:
        print("  peer:", line)
    if bench.rss_samples:
        print()
        print("peer RSS samples (s since start: MB), every ~2 s:")
        step = max(1, round(2.0 / 0.25))
        picked = bench.rss_samples[::step]
        print("  " + "  ".join(f"{t:.0f}:{rss / 1e6:.0f}" for t, rss in picked))


if __name__ == "__main__":
    main()
