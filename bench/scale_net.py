"""A network of real peer processes on one machine, for ``bench_scale.py`` and its test.

Rules:
- whisper peers run ``-headless -json -host 127.0.0.1 -port 0 -no-discovery -no-history``
  with a key file and a data directory in a temporary directory of the run, never anywhere
  else: they listen, dial and are dialled on 127.0.0.1 only.  ``routing`` adds
  ``-routing MODE`` (only builds that have the flag take it).
- The Go reference peer (``go_cmd``) is only ever started by a run that checked it is inside
  a network namespace of its own (``bench_scale.py``, ``go_peer_lab.py``); it binds that
  namespace's LAN address and prints ``Listening on IP:PORT``.
- Peers join in waves (1, 1, 2, 4 ... up to ``WAVE``): each peer names 1-2 contacts
  (``-peer``; the Go peer takes one) chosen at random (seeded) among the peers already
  listening, and a wave is started only once the previous one listens.
- Every line a peer prints on stdout is read by a thread of its own, stamped with
  ``time.monotonic_ns()`` when read; a line naming a message tag (``scale-...``) is an
  arrival of that message at that peer.  Whoever waits for arrivals waits on ``changed``
  (a condition), never on a bare sleep.
- A peer's TCP connections are the established sockets among its file descriptors
  (``/proc/PID/fd`` against ``/proc/net/tcp``); its CPU is utime + stime of
  ``/proc/PID/stat`` (all threads).
- Every process started is killed when the network is closed, however the run ends.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
TAG = re.compile(r"scale-[0-9a-z]+-\d+")
START_TIMEOUT = 30.0  # seconds a wave of peers gets to listen
WAVE = 10  # peers started at once


def whisper_cmd(routing: str | None = None) -> Callable[[int, list[str], Path], list[str]]:
    """The command line of whisper peer ``i`` joining through ``contacts``."""

    def cmd(i: int, contacts: list[str], tmp: Path) -> list[str]:
        args = [sys.executable, "-m", "whisper", "-headless", "-json", "-host", HOST]
        args += ["-port", "0", "-no-discovery", "-no-history", "-nick", f"p{i}"]
        args += ["-identity", str(tmp / f"id{i}.key")]
        for contact in contacts:
            args += ["-peer", contact]
        if routing:
            args += ["-routing", routing]
        return args

    return cmd


def go_cmd(binary: str) -> Callable[[int, list[str], Path], list[str]]:
    """The Go reference peer (one contact: it takes one ``-peer``); HTTP on loopback."""

    def cmd(i: int, contacts: list[str], tmp: Path) -> list[str]:
        args = [binary, "-port", "0", "-http", f"{HOST}:0", "-nick", f"g{i}"]
        return [*args, "-peer", contacts[0]] if contacts else args

    return cmd


@dataclass
class Proc:
    """One peer process: its address, and when each tagged message reached it."""

    index: int
    popen: subprocess.Popen[bytes]
    addr: str = ""
    arrivals: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    last_err: str = ""  # its last stderr line (why it exited, if it did)
    err_reader: threading.Thread | None = None
    alive: bool = True

    @property
    def pid(self) -> int:
        return self.popen.pid

    def say(self, line: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(line.encode() + b"\n")
        self.popen.stdin.flush()


class Net:
    """Peers started by ``start``; stopped by ``close`` (use it as a context manager)."""

    def __init__(
        self,
        cmd: Callable[[int, list[str], Path], list[str]],
        seed: int = 1,
        listening: str = r"[Ll]istening on (\S+)",
        pythonpath: str | None = None,
    ) -> None:
        """``pythonpath``: where the peers import ``whisper`` from (default: ours)."""
        self.cmd = cmd
        self.rng = random.Random(seed)
        self.listening = re.compile(listening)
        self.peers: list[Proc] = []
        self.changed = threading.Condition()
        self._tmp = tempfile.TemporaryDirectory(prefix="scalebench-")
        self.tmp = Path(self._tmp.name)
        self.env = {**os.environ, "HOME": str(self.tmp), "XDG_DATA_HOME": str(self.tmp)}
        self.env["PYTHONPATH"] = pythonpath or os.environ.get("PYTHONPATH", str(REPO))
        self.run_id = f"{self.rng.getrandbits(32):08x}"
        self.sent = 0

    def __enter__(self) -> Net:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- starting ----------------------------------------------------------------------

    def start(self, n: int, wave: int = WAVE) -> None:
        """``n`` peers, joined through 1-2 random earlier peers each, in waves of at most
        ``wave`` and at most as many as already listen (1, 1, 2, 4 ...)."""
        while len(self.peers) < n:
            listening = [p.addr for p in self.peers if p.alive]
            batch = []
            for _ in range(min(wave, max(1, len(listening)), n - len(self.peers))):
                k = min(len(listening), self.rng.choice((1, 2)))
                batch.append(self._spawn(len(self.peers), self.rng.sample(listening, k)))
            deadline = time.monotonic() + START_TIMEOUT
            with self.changed:
                while not all(p.addr for p in batch):
                    if any(p.popen.poll() is not None for p in batch) or not self.changed.wait(
                        deadline - time.monotonic()
                    ):
                        break
            if not all(p.addr for p in batch):
                raise RuntimeError(f"peers did not listen: {self._trouble(batch)}")

    def _spawn(self, i: int, contacts: list[str]) -> Proc:
        popen = subprocess.Popen(
            self.cmd(i, contacts, self.tmp),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.tmp,  # "python -m whisper" never imports a ./whisper of the caller
            env=self.env,
            start_new_session=True,
        )
        proc = Proc(i, popen)
        self.peers.append(proc)
        threading.Thread(target=self._read_out, args=(proc,), daemon=True).start()
        proc.err_reader = threading.Thread(target=self._read_err, args=(proc,), daemon=True)
        proc.err_reader.start()
        return proc

    def _read_out(self, proc: Proc) -> None:
        assert proc.popen.stdout is not None
        for raw in proc.popen.stdout:
            now = time.monotonic_ns()
            match = TAG.search(raw.decode("utf-8", "replace"))
            if match:
                with self.changed:
                    proc.arrivals.setdefault(match.group(0), now)
                    self.changed.notify_all()

    def _read_err(self, proc: Proc) -> None:
        assert proc.popen.stderr is not None
        for raw in proc.popen.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            match = self.listening.search(line)
            with self.changed:
                proc.last_err = line
                if match and not proc.addr:
                    proc.addr = match.group(1)
                elif any(w in line for w in ("Traceback", " ERROR ", "panic")):
                    proc.errors.append(line)
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def _trouble(self, peers: Iterable[Proc]) -> str:
        for p in peers:  # an exited peer's last words: its stderr read to the end
            if p.popen.poll() is not None and p.err_reader is not None:
                p.err_reader.join(2)
        return "; ".join(
            f"#{p.index} exit {p.popen.poll()}: {p.last_err}" for p in peers if not p.addr
        )

    # -- driving -----------------------------------------------------------------------

    def alive(self) -> list[Proc]:
        return [p for p in self.peers if p.alive]

    def send(self, sender: Proc) -> tuple[str, Proc, int]:
        """A new tagged line from ``sender``: (tag, sender, send time in ns)."""
        tag = f"scale-{self.run_id}-{self.sent}"
        self.sent += 1
        at = time.monotonic_ns()
        sender.say(tag)
        return tag, sender, at

    def wait_arrivals(self, sent: list[tuple[str, Proc, int]], quiet: float, limit: float) -> bool:
        """Until every live peer but its sender has every message (True), or nothing new
        arrived for ``quiet`` seconds, or ``limit`` seconds passed (False)."""
        deadline = time.monotonic() + limit
        with self.changed:
            while True:
                missing = sum(
                    tag not in p.arrivals for tag, s, _ in sent for p in self.alive() if p is not s
                )
                if not missing:
                    return True
                wait = min(quiet, deadline - time.monotonic())
                if wait <= 0 or not self.changed.wait(wait):
                    return False

    def kill(self, share: float) -> list[Proc]:
        """SIGKILL ``share`` of the live peers, chosen at random."""
        victims = self.rng.sample(self.alive(), round(share * len(self.alive())))
        for proc in victims:
            proc.popen.send_signal(signal.SIGKILL)
            proc.popen.wait()
            proc.alive = False
        return victims

    # -- measuring ---------------------------------------------------------------------

    def cpu(self) -> float:
        """CPU seconds of the live peers, all together."""
        return sum(cpu_seconds(p.pid) for p in self.alive())

    def connections(self) -> list[int]:
        """Established TCP connections of each live peer."""
        established = established_inodes()
        return [len(socket_inodes(p.pid) & established) for p in self.alive()]

    def settle(self, quiet: float = 2.0, limit: float = 60.0, every: float = 0.25) -> float:
        """Until no peer's connection count changed for ``quiet`` seconds; seconds taken."""
        start = time.monotonic()
        last, since = self.connections(), start
        while time.monotonic() - start < limit:
            time.sleep(every)  # polling /proc: nothing to wait on
            now = self.connections()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
        return time.monotonic() - start

    def close(self) -> None:
        for proc in self.peers:
            if proc.popen.poll() is None:
                proc.popen.kill()
        for proc in self.peers:
            proc.popen.wait()
            for stream in (proc.popen.stdin, proc.popen.stdout, proc.popen.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        self._tmp.cleanup()


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def established_inodes() -> set[int]:
    """Inodes of the established TCP sockets of this network namespace."""
    inodes: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[3] == "01":
                        inodes.add(int(cols[9]))
        except OSError:
            continue
    return inodes


def socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes
