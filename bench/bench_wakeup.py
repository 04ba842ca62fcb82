"""What one message costs a process that is woken for it, at chat rates (127.0.0.1 only).

At chat rates every message wakes each peer up on its own: nothing is batched, and the cost
is that of a wake-up, not of the relay's inner loop (``bench_relay.py`` measures that, flat
out).  Three processes get ``--messages`` messages at ``--rate`` a second and pass each one
on; printed: their CPU (utime + stime, ``/proc/PID/stat``) per message, median of
``--rounds``:

1. **epoll**: a bare ``select.epoll`` loop that reads a socket pair, writes what it read to
   another and a line to its stdout: the floor of any Python process.
2. **trio**: the same loop on trio (``await recv``, ``await send``).
3. **whisper**: a headless whisper peer (``-json``, ``-no-history``, ``-routing flood``)
   reading the messages on a TCP connection and relaying them to one sink.

Nothing is asserted.  Usage: ``.venv/bin/python bench/bench_wakeup.py [--rate 20]``.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

from bench_relay import Peer, cpu_seconds

from whisper.addr import parse_hostport

HOST = "127.0.0.1"

EPOLL_LOOP = """
import select, socket, sys
a = socket.socket(fileno=int(sys.argv[1])); b = socket.socket(fileno=int(sys.argv[2]))
poll = select.epoll(); poll.register(a.fileno(), select.EPOLLIN)
while True:
    poll.poll()
    data = a.recv(65536)
    if not data:
        break
    b.send(data)
    sys.stdout.write("x\\n"); sys.stdout.flush()
"""

TRIO_LOOP = """
import socket, sys, trio
async def main():
    a = trio.socket.fromfd(int(sys.argv[1]), socket.AF_UNIX, socket.SOCK_STREAM)
    b = trio.socket.fromfd(int(sys.argv[2]), socket.AF_UNIX, socket.SOCK_STREAM)
    while data := await a.recv(65536):
        await b.send(data)
        sys.stdout.write("x\\n"); sys.stdout.flush()
trio.run(main)
"""


def drain(read) -> None:
    threading.Thread(target=lambda: [None for _ in iter(read, b"")], daemon=True).start()


def paced(send, count: int, rate: float) -> None:
    at = time.monotonic()
    for i in range(count):
        send(i)
        at += 1 / rate
        time.sleep(max(0.0, at - time.monotonic()))  # pacing the sender


def bare_loop(code: str, count: int, rate: float) -> float:
    """CPU per message of a bare loop fed through a socket pair."""
    into, theirs_in = socket.socketpair()
    theirs_out, out = socket.socketpair()
    fds = (theirs_in.fileno(), theirs_out.fileno())
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *map(str, fds)], pass_fds=fds, stdout=subprocess.PIPE
    )
    drain(lambda: out.recv(65536))
    drain(lambda: proc.stdout.read1(65536))
    time.sleep(1.5)  # started and idle
    before = cpu_seconds(proc.pid)
    paced(lambda i: into.send(b"m" * 100), count, rate)
    time.sleep(0.5)
    spent = cpu_seconds(proc.pid) - before
    proc.kill()
    proc.wait()
    return spent / count


def whisper_relay(count: int, rate: float) -> float:
    """CPU per message of a whisper peer relaying one connection's messages to one sink."""
    sink = socket.create_server((HOST, 0))
    cmd = [sys.executable, "-m", "whisper", "-headless", "-json", "-host", HOST, "-port", "0"]
    cmd += ["-no-discovery", "-no-history", "-routing", "flood", "-nick", "bench"]
    cmd += ["-peer", f"{HOST}:{sink.getsockname()[1]}"]
    peer = Peer(cmd, stdout=subprocess.PIPE)  # a pipe, as a reader of -json would give it
    try:
        conn, _ = sink.accept()
        drain(lambda: conn.recv(65536))
        drain(lambda: peer.proc.stdout.read1(65536))
        source = socket.create_connection(parse_hostport(peer.addr))
        time.sleep(1.5)

        def send(i: int) -> None:
            message = {"ID": uuid.uuid4().hex, "Addr": f"{HOST}:9", "Body": f"message {i}"}
            source.sendall(json.dumps(message).encode() + b"\n")

        before = cpu_seconds(peer.pid)
        paced(send, count, rate)
        time.sleep(0.5)
        return (cpu_seconds(peer.pid) - before) / count
    finally:
        peer.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=200)
    p.add_argument("--rate", type=float, default=20.0, help="messages a second (20)")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    runs: dict[str, list[float]] = {"epoll": [], "trio": [], "whisper": []}
    for _ in range(args.rounds):  # interleaved: drift in the machine's load cancels
        runs["epoll"].append(bare_loop(EPOLL_LOOP, args.messages, args.rate))
        runs["trio"].append(bare_loop(TRIO_LOOP, args.messages, args.rate))
        runs["whisper"].append(whisper_relay(args.messages, args.rate))
    print(
        f"CPU per message at {args.rate:g} msgs/s, {args.messages} messages, "
        f"median of {args.rounds} (all runs)"
    )
    for name, values in runs.items():
        shown = ", ".join(f"{v * 1e6:.0f}" for v in values)
        print(f"  {name:8} {statistics.median(values) * 1e6:6.0f} us   ({shown})")


if __name__ == "__main__":
    main()
