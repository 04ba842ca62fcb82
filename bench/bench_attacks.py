"""Memory-attack benchmark: the three attacks of issue 8 (item 6) against one real peer.

Each attack starts a fresh ``whisper`` process (``python -m whisper -host 127.0.0.1 -port 0
-headless -no-discovery``, flood control on as by default; ``--peer-cmd`` runs another build)
and prints the peer's peak RSS (``VmHWM``: the high-water mark of the process, so the true
peak, not a sample), its RSS at the end and what the peer did.  Everything is on 127.0.0.1.

1. **receive**: ``--connections`` (126) connections each send an unfinished message holding
   one complete string of about 1 MB of ASCII and one emoji (``{"ID":..,"Body":"xx..😀"``,
   never closed): Python holds such a string at 4 bytes a character.  A connection the peer
   drops is opened again and refilled, for ``--seconds``.
2. **replay**: four ~1 MB messages go into the peer's backlog, then ``--connections``
   listeners that accept and never read are announced (one ``Addr`` each), so the peer
   dials them all and replays the backlog on each connection; each stalls, is dropped after
   10 s and redialled.  Held for ``--hold`` seconds.
3. **queues**: ``--connections`` rounds; in each a new listener that never reads is
   announced, then 8 new ~1 MB messages are sent, so that each stalled link queues 8 MB of
   messages no other link holds (the worst case: all different).  Held for
   ``--queues-hold`` seconds after the last round.

A listener's SO_RCVBUF is 4 KiB, so that a stall needs little data.  ``accepts`` is how
many connections the peer opened to each listener (min/max): every stall is a reconnection,
and a listener given up on stops getting them.  Target (issue 8): peak RSS under 300 MB in
each attack with the default budgets.  Each attack is bounded: about 20-40 s, plus for the
queues attack the time the peer takes to read 1 GB (10-30 s on a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import selectors
import shlex
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench_relay import HOST, Peer, Source, read_status, whisper_peer

MB = 1_000_000
BODY_CHARS = 999_000  # a ~1 MB message stays under the 1 MiB limit with its other keys


def big_message(origin: str, n: int, *, emoji: bool = False, close: bool = True) -> bytes:
    """A ~1 MB message, unique; ``close=False``: the string ends but the object does not."""
    body = "x" * BODY_CHARS + ("\U0001f600" if emoji else f"{n:08d}")
    stamp = int(time.time() * 1000)
    head = f'{{"ID":"{secrets.token_hex(8)}","Addr":"{origin}","Timestamp":{stamp}'
    text = f'{head},"Body":"{body}"' + ("}\n" if close else "")
    return text.encode()


# -- stalled listeners ---------------------------------------------------------------------


class StalledListeners:
    """``n`` listeners that accept every connection and never read a byte."""

    def __init__(self, n: int) -> None:
        self.selector = selectors.DefaultSelector()
        self.listeners: list[socket.socket] = []
        self.accepts: dict[int, int] = {}
        self.held: list[socket.socket] = []
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited on accept
            sock.bind((HOST, 0))
            sock.listen(64)
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ)
            self.listeners.append(sock)
            self.accepts[sock.getsockname()[1]] = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def addrs(self) -> list[str]:
        return [f"{HOST}:{s.getsockname()[1]}" for s in self.listeners]

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self.selector.select(0.2):
                listener: socket.socket = key.fileobj  # type: ignore[assignment]
                with contextlib.suppress(BlockingIOError, InterruptedError):
                    conn, _ = listener.accept()
                    self.held.append(conn)  # never read; closed at the end
                    self.accepts[listener.getsockname()[1]] += 1

    def counts(self) -> list[int]:
        return list(self.accepts.values())

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in [*self.held, *self.listeners]:
            sock.close()
        self.selector.close()


# -- the attacks ---------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    peak: int  # VmHWM, bytes
    end: int  # VmRSS at the end, bytes
    seconds: float
    note: str
    warnings: int


def attack_receive(peer: Peer, n: int, seconds: float, watch: Callable[[], bool]) -> str:
    host, port = peer.addr.rsplit(":", 1)
    conns: list[socket.socket | None] = [None] * n
    opened = dropped = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and watch():
        for i in range(n):
            sock = conns[i]
            if sock is not None and _closed_by_peer(sock):
                sock.close()
                sock = conns[i] = None
                dropped += 1
            if sock is None:
                try:
                    sock = socket.create_connection((host, int(port)), timeout=10)
                    sock.sendall(big_message("bench-a", i, emoji=True, close=False))
                    opened += 1
                except OSError:  # dropped while we wrote (or refused): try again later
                    if sock is not None:
                        sock.close()
                    dropped += 1
                    continue
                conns[i] = sock
            if time.monotonic() >= deadline or not watch():
                break
        time.sleep(0.2)
    alive = sum(1 for s in conns if s is not None and not _closed_by_peer(s))
    for s in conns:
        if s is not None:
            s.close()
    return f"{opened} connections filled, {dropped} dropped by the peer, {alive} open at the end"


def _closed_by_peer(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        while sock.recv(4096):  # its capability banner (PROTOCOL.md §7.10), then only EOF
            pass
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def attack_replay(peer: Peer, n: int, hold: float, watch: Callable[[], bool]) -> str:
    source = Source(peer.addr, "bench-b")
    listeners = StalledListeners(n)
    try:
        for i in range(4):
            source.sock.sendall(big_message("bench-b", i))
        time.sleep(1.0)  # let the peer take them into its backlog before it dials anyone
        for addr in listeners.addrs:  # no Timestamp: kept out of the backlog (50 messages)
            source.sock.sendall(
                f'{{"ID":"{secrets.token_hex(8)}","Addr":"{addr}","Body":"hello"}}\n'.encode()
            )
        _hold(hold, watch)
        counts = listeners.counts()
    finally:
        listeners.close()
        source.close()
    return f"4 x 1 MB in the backlog; accepts per listener {min(counts)}-{max(counts)}"


def attack_queues(peer: Peer, n: int, hold: float, watch: Callable[[], bool]) -> str:
    source = Source(peer.addr, "bench-c")
    listeners = StalledListeners(n)
    try:
        for r, addr in enumerate(listeners.addrs):
            if not watch():
                break
            source.hello(addr)
            for k in range(8):  # each round's origin is new: 8 messages are within its limit
                source.sock.sendall(big_message(f"bench-c-{r}", k))
        _hold(hold, watch)
        counts = listeners.counts()
    finally:
        listeners.close()
        source.close()
    return f"{n} rounds of 8 x 1 MB; accepts per listener {min(counts)}-{max(counts)}"


def _hold(seconds: float, watch: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and watch():
        time.sleep(0.2)


ATTACKS = {"receive": attack_receive, "replay": attack_replay, "queues": attack_queues}


def run(name: str, cmd: list[str], args: argparse.Namespace) -> Outcome:
    peer = whisper_peer(cmd, flood_control=True)
    capped = False

    def watch() -> bool:
        nonlocal capped
        capped = capped or peer.rss() > args.rss_cap * MB
        return not capped and peer.proc.poll() is None

    start = time.monotonic()
    try:
        length = {"receive": args.seconds, "replay": args.hold, "queues": args.queues_hold}[name]
        note = ATTACKS[name](peer, args.connections, length, watch)
        peak, end = read_status(peer.pid, "VmHWM"), peer.rss()
    finally:
        peer.stop()
    if capped:
        note += f"; STOPPED at the {args.rss_cap} MB cap"
    if peer.proc.returncode not in (None, 0, -15):
        note += f"; the peer exited {peer.proc.returncode}"
    return Outcome(name, peak, end, time.monotonic() - start, note, len(peer.warnings))


def main() -> None:
    p = argparse.ArgumentParser(
        description="Peak RSS of one whisper peer under the three memory attacks of issue 8."
    )
    p.add_argument("--peer-cmd", default=f"{shlex.quote(sys.executable)} -m whisper")
    p.add_argument("--connections", type=int, default=126, help="attackers per attack (126)")
    p.add_argument("--seconds", type=float, default=20.0, help="receive attack length (20 s)")
    p.add_argument("--hold", type=float, default=35.0, help="replay attack length (35 s)")
    p.add_argument("--queues-hold", type=float, default=15.0, help="queues: hold after (15 s)")
    p.add_argument("--only", default="receive,replay,queues", help="comma-separated attacks")
    p.add_argument("--rss-cap", type=int, default=3000, help="stop an attack past this (MB)")
    args = p.parse_args()
    cmd = shlex.split(args.peer_cmd)
    print(f"peer: {' '.join(cmd)}; {args.connections} attackers; target: peak RSS < 300 MB")
    outcomes = []
    for name in args.only.split(","):
        outcome = run(name, cmd, args)
        outcomes.append(outcome)
        print(
            f"[{name}] peak RSS {outcome.peak / MB:,.0f} MB, at the end {outcome.end / MB:,.0f} "
            f"MB, {outcome.seconds:.0f}s, {outcome.warnings} warnings logged: {outcome.note}",
            flush=True,
        )
    print()
    print(f"{'attack':<8} {'peak RSS':>10} {'end RSS':>9}")
    for o in outcomes:
        print(f"{o.name:<8} {o.peak / MB:>7,.0f} MB {o.end / MB:>6,.0f} MB")


if __name__ == "__main__":
    main()
