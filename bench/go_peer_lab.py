"""Where bench_relay.py runs the Go reference peer: a network namespace made for the run.

Rules:
- The Go peer binds the first non-loopback IPv4 address it finds and sends a datagram to
  255.255.255.255:5555 at start, so it never runs in the machine's own namespace.  With
  ``--go`` the bench makes a lab namespace (``tests/netns.py``) with a LAN address of its own,
  ``LAB_IP``, re-runs itself in it with ``ip netns exec`` (sinks, source and both peers are
  then all inside), and deletes the namespace when that run ends, however it ends.
- The re-run is told the namespace's name and checks that it is inside it before it starts
  the Go peer (``inside``); it refuses otherwise.
- Where the machine refuses a namespace (not root, no iproute2 ...), the bench says why and
  exits 1.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAB_IP = "10.77.0.1"


def _netns():  # tests/netns.py, the lab helper the tests use
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests import netns

    return netns


def rerun_inside(script: Path, argv: list[str]) -> int:
    """Run ``script argv`` in a new lab namespace; its exit status."""
    netns = _netns()
    try:
        with netns.namespaces() as lab:
            ns = lab.host("bench")
            lab.lan(ns, f"{LAB_IP}/24")
            print(f"in network namespace {ns} ({LAB_IP} exists only there)", flush=True)
            cmd = ["ip", "netns", "exec", ns, sys.executable, str(script), *argv, "--inside", ns]
            return subprocess.run(cmd, check=False).returncode
    except netns.Refused as exc:
        print(f"--go needs a network namespace of its own: {exc}", file=sys.stderr)
        return 1


def inside(ns: str) -> bool:
    return _netns().inside(ns)
