"""bench/bench_scale.py's machinery at a tiny size, so that the benchmark cannot rot.

Four real whisper processes on 127.0.0.1 (``bench/scale_net.py``) join through random
contacts (fixed seed); every peer speaks once, then five lines from random peers reach every
other peer; one peer is killed and five more lines reach every survivor.  Waiting is on the
peers' output (``Net.wait_arrivals``: a condition the stdout readers notify), with a timeout
only for failure.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from bench_scale import run_phase  # noqa: E402
from scale_net import Net, whisper_cmd  # noqa: E402

TIMEOUT = 30.0  # seconds without a new arrival before a phase gives up


def test_every_line_reaches_every_peer_and_every_survivor() -> None:
    with Net(whisper_cmd(), seed=7) as net:
        net.start(4)
        assert all(p.addr.startswith("127.0.0.1:") for p in net.peers)
        warm = run_phase(net, 0, None, each=True, quiet=TIMEOUT)
        assert (warm.messages, warm.delivery) == (4, 1.0)
        stable = run_phase(net, 5, None, quiet=TIMEOUT)
        assert stable.delivery == 1.0 and len(stable.latencies_ms) == 5
        assert all(ms > 0 for ms in stable.latencies_ms)
        assert all(n >= 1 for n in net.connections())  # each joined through a contact
        assert net.cpu() > 0  # /proc/PID/stat is read (each peer spent CPU starting)
        killed = net.kill(0.25)
        assert len(killed) == 1 and killed[0].popen.returncode is not None
        crash = run_phase(net, 5, None, quiet=TIMEOUT)
        assert (crash.peers, crash.delivery) == (3, 1.0)
        assert not [line for p in net.peers for line in p.errors]
