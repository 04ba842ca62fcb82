"""Scale benchmark: N real peer processes on loopback, joined through random contacts.

What it measures (numbers only; nothing is asserted), for each ``--peers`` size:

1. **Join**: N whisper peers (``scale_net.py``: 127.0.0.1 only, no discovery, no history)
   join in waves, each through 1-2 random earlier peers (``--seed``); then one message
   from every peer, again until a round reaches every peer (at most 3 rounds; or
   ``--warmup`` messages from random peers), and the bench waits until no peer's
   TCP connection count has changed for 2 s.  TCP connections per peer (max, mean):
   established sockets of its process.
2. **Stable**: ``--messages`` lines typed on the stdin of random peers at ``--rate`` a
   second.  Delivery ratio (arrivals over live peers x messages, the sender left out),
   latency from the write on the sender's stdin to the line on the *last* peer's stdout
   (p50, p99, over messages), and CPU per message per peer: the peers' utime + stime
   (``/proc/PID/stat``) from the first send until every line arrived (or 3 s passed with
   nothing new), over messages x peers.  "per copy" divides by the copies a flood makes
   instead: every peer reads every message once on each incoming connection (about half
   its connections).
3. **Crash**: SIGKILL 30% of the peers (``--kill``), wait until the connection counts have
   been still for 2 s, then ``--messages`` more from random survivors: delivery to the
   survivors.

``--build NAME=PYTHONPATH`` (repeatable) runs whisper from other source trees too (a copy of
the code before a change: ``git archive COMMIT whisper | tar -x -C DIR``), each its own
column, one after another at each size.  ``--routing MODE`` passes ``-routing MODE`` to the
whisper peers (builds that have it).
``--go PATH`` runs the same phases on a full mesh of Go reference peers of the same size,
in the same run: the whole bench then re-runs inside a network namespace made for it
(``go_peer_lab.py``, root only), since the Go peer binds the first non-loopback address and
broadcasts at start.  Both flood networks dial the ``Addr`` of every message they see, so the
warm-up makes them the full mesh they end up with once everyone has spoken (whisper after one
round: a peer it dials dials it back at once, the hello; Go after two: its first round reaches
about half the peers).  Usage:
``.venv/bin/python bench/bench_scale.py --peers 25 --peers 100 [--go PATH]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import go_peer_lab
from bench_relay import _start_py_spy as start_py_spy
from bench_relay import _stop_py_spy as stop_py_spy
from scale_net import Net, Proc, go_cmd, whisper_cmd

QUIET = 3.0  # seconds without a new arrival that end a phase
PHASE_LIMIT = 60.0
WARM_ROUNDS = 3  # rounds of "every peer speaks once" at most


@dataclass
class Phase:
    """What one batch of messages did."""

    peers: int
    messages: int
    expected: int = 0
    arrived: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # messages that reached everyone
    cpu: float = 0.0
    wall: float = 0.0

    @property
    def delivery(self) -> float:
        return self.arrived / self.expected if self.expected else float("nan")

    def quantile(self, q: float) -> float:
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")

    @property
    def cpu_per_msg_peer_ms(self) -> float:
        return self.cpu / (self.messages * self.peers) * 1e3


def run_phase(
    net: Net, messages: int, rate: float | None, each: bool = False, quiet: float = QUIET
) -> Phase:
    """``messages`` lines from random live peers (``each``: one from every peer, in turn)
    at ``rate`` a second (None: at once); wait until they arrived, or nothing arrived for
    ``quiet`` seconds; count."""
    live = net.alive()
    messages = len(live) if each else messages
    phase = Phase(len(live), messages)
    sent: list[tuple[str, Proc, int]] = []
    cpu0, t0 = net.cpu(), time.monotonic()
    for i in range(messages):
        delay = t0 + i / rate - time.monotonic() if rate else 0
        if delay > 0:
            time.sleep(delay)  # pacing the sender, not waiting for anything
        sent.append(net.send(live[i] if each else net.rng.choice(live)))
    net.wait_arrivals(sent, quiet, max(quiet, PHASE_LIMIT))
    phase.cpu, phase.wall = net.cpu() - cpu0, time.monotonic() - t0
    with net.changed:
        for tag, sender, at in sent:
            got = [p.arrivals[tag] for p in live if p is not sender and tag in p.arrivals]
            phase.expected += len(live) - 1
            phase.arrived += len(got)
            if len(got) == len(live) - 1 and got:
                phase.latencies_ms.append((max(got) - at) / 1e6)
    return phase


@dataclass
class Result:
    name: str
    n: int
    join_s: float = 0.0
    conns: list[int] = field(default_factory=list)
    stable: Phase | None = None
    conns_after: list[int] = field(default_factory=list)
    crash: Phase | None = None
    errors: list[str] = field(default_factory=list)


def measure(name: str, net: Net, args: argparse.Namespace, n: int, warm_each: bool) -> Result:
    """Join, warm up (``warm_each``: every peer speaks once), stable, crash."""
    res = Result(name, n)
    t0 = time.monotonic()
    net.start(n)
    if warm_each:  # until a round reaches everyone: the Go peer dials only the authors
        for _ in range(WARM_ROUNDS):  # of what reaches it, so its first round does not
            if run_phase(net, 0, args.rate, each=True).delivery == 1.0:
                break
            net.settle()
    elif args.warmup:
        run_phase(net, args.warmup, args.rate)
    net.settle()
    res.join_s = time.monotonic() - t0
    res.conns = net.connections()
    print(f"{name} x{n}: joined and settled in {res.join_s:.1f}s", flush=True)
    spy = start_py_spy(net.peers[0].pid, args.py_spy) if args.py_spy and name != "Go" else None
    res.stable = run_phase(net, args.messages, args.rate)
    if spy is not None:
        stop_py_spy(spy)
    _say(name, n, "stable", res.stable)
    net.kill(args.kill)
    net.settle()
    res.conns_after = net.connections()
    res.crash = run_phase(net, args.messages, args.rate)
    _say(name, n, f"after killing {args.kill:.0%}", res.crash)
    res.errors = [line for p in net.peers for line in p.errors]
    return res


def _say(name: str, n: int, label: str, ph: Phase) -> None:
    print(
        f"  [{name} x{n} {label}] {ph.messages} msgs to {ph.peers} peers: delivery "
        f"{ph.delivery:.2%}, last peer p50 {ph.quantile(0.5):.0f} ms p99 {ph.quantile(0.99):.0f} "
        f"ms, CPU {ph.cpu:.1f}s over {ph.wall:.1f}s = {ph.cpu_per_msg_peer_ms:.2f} ms/msg/peer",
        flush=True,
    )


def rows(res: Result) -> list[tuple[str, str]]:
    st, cr = res.stable, res.crash
    assert st is not None and cr is not None
    incoming = statistics.mean(res.conns) / 2 if res.conns else float("nan")
    per_copy = st.cpu_per_msg_peer_ms / incoming * 1e3 if incoming else float("nan")
    return [
        ("peers", f"{res.n}"),
        ("join + settle", f"{res.join_s:.1f} s"),
        ("TCP connections per peer: max / mean", f"{max(res.conns)} / {incoming * 2:.1f}"),
        ("delivery (stable)", f"{st.delivery:.2%}"),
        ("latency to last peer: p50 / p99", _p50_p99(st)),
        ("CPU per message per peer", f"{st.cpu_per_msg_peer_ms:.2f} ms"),
        ("  per copy (flood: / incoming conns)", f"{per_copy:.0f} us"),
        ("survivors after the kill", f"{cr.peers}"),
        ("TCP connections per survivor: max", f"{max(res.conns_after, default=0)}"),
        ("delivery to survivors", f"{cr.delivery:.2%}"),
        ("latency to last survivor: p50 / p99", _p50_p99(cr)),
        ("errors logged by peers", f"{len(res.errors)}"),
    ]


def _p50_p99(ph: Phase) -> str:
    return f"{ph.quantile(0.5):.0f} / {ph.quantile(0.99):.0f} ms"


def print_table(results: list[Result]) -> None:
    if not results:
        return
    table = [rows(r) for r in results]
    width = max(len(label) for label, _ in table[0])
    print()
    print(f"{'':<{width}}" + "".join(f"  {r.name + ' x' + str(r.n):>16}" for r in results))
    print("-" * (width + 18 * len(results)))
    for i, (label, _) in enumerate(table[0]):
        print(f"{label:<{width}}" + "".join(f"  {t[i][1]:>16}" for t in table))
    for r in results:
        for line in r.errors[:3]:
            print(f"  {r.name} x{r.n}: {line}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--peers", type=int, action="append", help="network size (repeatable; 25)")
    p.add_argument("--messages", type=int, default=40, help="messages per phase (40)")
    p.add_argument("--rate", type=float, default=10.0, help="messages a second (10)")
    p.add_argument(
        "--warmup",
        type=int,
        default=-1,
        help="whisper warm-up: N messages from random peers (default: one from every peer, "
        "which makes a flood network a full mesh)",
    )
    p.add_argument("--kill", type=float, default=0.3, help="share of peers killed (0.3)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--routing", help="pass -routing MODE to the whisper peers")
    p.add_argument(
        "--build",
        action="append",
        default=[],
        metavar="NAME=PYTHONPATH",
        help="run whisper from this source tree, as column NAME (repeatable: builds compared "
        "in one run, one after another at each size); default: this one",
    )
    p.add_argument("--go", metavar="PATH", help="also a full mesh of Go peers (in a netns)")
    p.add_argument("--go-max", type=int, default=25, help="largest Go network (25)")
    p.add_argument(
        "--py-spy",
        metavar="OUT",
        help="record whisper peer 0 with py-spy during the stable phase (OUT.txt: collapsed "
        "stacks)",
    )
    p.add_argument("--inside", metavar="NS", help=argparse.SUPPRESS)  # set by the --go re-run
    args = p.parse_args()
    sizes = args.peers or [25]

    if args.go and not args.inside:
        raise SystemExit(go_peer_lab.rerun_inside(Path(__file__), sys.argv[1:]))
    if args.go and not go_peer_lab.inside(args.inside):
        raise SystemExit(f"not inside the namespace {args.inside}: never run the Go peer here")

    builds = [tuple(b.split("=", 1)) for b in args.build] or [("whisper", None)]
    if any(len(b) != 2 for b in builds):
        raise SystemExit("--build takes NAME=PYTHONPATH")
    results: list[Result] = []
    for n in sizes:
        for build, path in builds:
            name = f"{build}/{args.routing}" if args.routing else build
            with Net(whisper_cmd(args.routing), seed=args.seed, pythonpath=path) as net:
                results.append(measure(name, net, args, n, args.warmup < 0))
        if args.go and n <= args.go_max:
            with Net(go_cmd(args.go), seed=args.seed) as net:
                results.append(measure("Go", net, args, n, True))
    print_table(results)


if __name__ == "__main__":
    main()
