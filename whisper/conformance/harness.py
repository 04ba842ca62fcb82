"""The peer under test: started from a command template, or an address already running.

Rules:
- ``--cmd`` templates get ``{port}``, ``{port2}``, ``{port3}`` ... replaced by free TCP ports
  on 127.0.0.1 outside the kernel's ephemeral range (``{port}`` is the one the peer must
  listen on; the others are for whatever else it binds, e.g. the Go peer's ``-http``).
  ``{udp}`` is replaced by the peer's UDP discovery port: a free UDP port (free on all
  addresses, outside the ephemeral range) per process, or ``--discovery-port N`` when given.
  Discovery datagrams for one peer must reach that peer alone: peers sharing a port with
  ``SO_REUSEPORT`` would each get only some of the unicast datagrams sent to it.
  The result is split like a shell would (``shlex``) and executed directly, without a shell.
- A bare program name (no ``/``) is looked up first beside the Python running the suite (its
  virtualenv's ``bin``: ``.venv/bin/whisper-conformance --cmd 'whisper ...'`` tests that
  venv's ``whisper``, activated or not, and not another ``whisper`` on ``PATH``), then on
  ``PATH`` (``resolve_program``).
- A fresh process per case, in its own session (process group), with stdin an open pipe that
  is never written (some peers exit on end of input), stdout discarded and stderr kept in a
  temporary file (quoted in a detail only when the peer exits on its own).
- The peer is ready when a TCP connection to its port succeeds; until then the suite polls
  (every 20 ms, bounded by the startup timeout) and notices if the process exits first.
  One that exits saying its address is already in use (a port free when we checked, taken
  before it bound) is started again on new ports, ``START_ATTEMPTS`` times in all.
- Stopping: SIGTERM to the process group we created, SIGKILL after ``STOP_GRACE`` seconds.
  Only processes started here are signalled, and only while their leader is still running.
- ``--target HOST:PORT`` is a peer someone else runs: nothing is started or signalled.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import trio

LOCALHOST = "127.0.0.1"
POLL_INTERVAL = 0.02
STOP_GRACE = 3.0
_PORT_FIELD = re.compile(r"\{port(\d*)\}")
UDP_FIELD = "{udp}"
_PYTHON_ERROR = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*:")


START_ATTEMPTS = 3  # a peer that found its port taken is started again, on new ports
PORT_TAKEN = "address already in use"  # Python's OSError and Go's bind error say this


class PeerStartError(Exception):
    """The peer under test could not be started or never listened."""


@dataclass(frozen=True)
class Target:
    """How to reach the peer under test: a command template, or a running address."""

    host: str
    port: int | None = None  # a running peer (--target)
    cmd: str | None = None  # a template to start a fresh peer per case (--cmd)
    discovery_port: int | None = None  # fixed UDP discovery port (--discovery-port)

    @property
    def can_spawn(self) -> bool:
        return self.cmd is not None

    @property
    def fixed_udp_shared(self) -> bool:
        """Every peer started from the template binds the same UDP port: one at a time."""
        return self.can_spawn and self.discovery_port is not None

    def describe(self) -> str:
        text = f"--cmd {self.cmd}" if self.cmd else f"--target {self.host}:{self.port}"
        if self.discovery_port is not None:
            text += f" --discovery-port {self.discovery_port}"
        return text

    def udp_missing(self) -> str | None:
        """Why datagrams cannot be sent to the peer's discovery port, or None if they can."""
        if self.discovery_port is not None or (self.cmd and UDP_FIELD in self.cmd):
            return None
        if self.cmd:
            return (
                "needs the peer's UDP discovery port: put {udp} in the --cmd template"
                " (a free port per case), or give --discovery-port N"
            )
        return "needs the peer's UDP discovery port: give --discovery-port N"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A TCP port on 127.0.0.1 (``kind=SOCK_DGRAM``: a UDP port on every address) that
    nobody uses right now, outside the kernel's ephemeral range: the suite's own listeners,
    connections and datagram sockets (port 0) can then never take it between this check and
    the peer binding it."""
    host = LOCALHOST if kind == socket.SOCK_STREAM else "0.0.0.0"
    low, high = _ephemeral_range()
    pools = [r for r in (range(20_000, low), range(high + 1, 65_536)) if len(r) >= 1000]
    for _ in range(200 if pools else 0):
        port = random.choice(random.choice(pools))
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32_768, 60_999  # Linux's default; other systems use 49152-65535


def fill_template(template: str, udp: int | None = None) -> tuple[list[str], int, int | None]:
    """Replace the ``{portN}`` fields with free ports and ``{udp}`` with ``udp`` (default: a
    free UDP port); return argv, the main port and the discovery port (``udp``, or the one
    filled in, or None)."""
    if UDP_FIELD in template:
        udp = udp or free_port(socket.SOCK_DGRAM)
        template = template.replace(UDP_FIELD, str(udp))
    ports: dict[str, int] = {}

    def port_for(match: re.Match[str]) -> str:
        key = match.group(1) or "1"
        if key not in ports:
            ports[key] = free_port()
        return str(ports[key])

    filled = _PORT_FIELD.sub(port_for, template)
    if "1" not in ports:
        raise PeerStartError("the --cmd template has no {port} field")
    argv = shlex.split(filled)
    if not argv:
        raise PeerStartError("the --cmd template is empty")
    return [resolve_program(argv[0]), *argv[1:]], ports["1"], udp


def resolve_program(name: str) -> str:
    """The program a ``--cmd`` runs (see the module rules); ``name`` unchanged when it has
    a directory part or is found nowhere (starting it then fails with a clear error)."""
    if os.sep in name or (os.altsep and os.altsep in name):
        return name
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name) or name


def program_of(template: str) -> tuple[str, str]:
    """The template's program as written and as resolved, for the report's header."""
    try:
        argv = shlex.split(template)
    except ValueError:
        argv = []
    return (argv[0], resolve_program(argv[0])) if argv else ("", "")


class PeerUnderTest:
    """One running peer: its address and, when we started it, its process."""

    def __init__(
        self,
        host: str,
        port: int,
        process: trio.Process | None = None,
        udp_port: int | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.process = process
        self.udp_port = udp_port  # its UDP discovery port, where known
        self.exited = trio.Event()  # never set for a --target peer
        self.stderr_path: str | None = None

    @property
    def returncode(self) -> int | None:
        return self.process.returncode if self.process is not None else None

    def exit_detail(self) -> str:
        """``the peer exited with status N`` plus the last line of its stderr, if any."""
        code = self.returncode
        if code is None:
            return ""
        text = f"the peer exited with status {code}"
        if code < 0:
            text = f"the peer was killed by signal {-code}"
        last = _last_line(self.stderr_path)
        return f"{text} (its stderr says: {last!r})" if last else text

    async def wait_for_exit(self, seconds: float) -> bool:
        """Give a peer that stopped answering a moment to show its exit status."""
        if self.process is None:
            return False
        with trio.move_on_after(seconds):
            await self.exited.wait()
        return self.exited.is_set()


def _last_line(path: str | None) -> str:
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip(" \t|+-") for line in text.splitlines()]
    lines = [line for line in lines if line]
    # A crash's reason beats the last frame of its stack trace (Go panics, Python errors).
    for line in lines:
        if line.startswith(("panic:", "fatal error:")):
            return line[:200]
    for line in reversed(lines):
        if _PYTHON_ERROR.match(line):
            return line[:200]
    return lines[-1][:200] if lines else ""


@contextlib.asynccontextmanager
async def open_peer(target: Target, startup_timeout: float) -> AsyncIterator[PeerUnderTest]:
    """Yield a listening peer; stop it (if we started it) when the block ends."""
    if target.cmd is None:
        assert target.port is not None
        yield PeerUnderTest(target.host, target.port, udp_port=target.discovery_port)
        return
    for attempt in range(START_ATTEMPTS):
        argv, port, udp = fill_template(target.cmd, target.discovery_port)
        with tempfile.NamedTemporaryFile(prefix="whisper-conformance-", suffix=".err") as err:
            try:
                process = await trio.lowlevel.open_process(
                    argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    start_new_session=True,
                )
            except OSError as exc:
                looked = (
                    "" if os.sep in argv[0] else f" (not in {Path(sys.executable).parent} or PATH)"
                )
                raise PeerStartError(
                    f"cannot run {argv[0]!r}: {exc.strerror or exc}{looked}"
                ) from None
            peer = PeerUnderTest(target.host, port, process, udp)
            peer.stderr_path = err.name
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_exit, peer)
                try:
                    problem = await _listening_problem(peer, startup_timeout)
                    if problem is None:
                        yield peer
                finally:
                    with trio.CancelScope(shield=True):
                        await _stop(peer)
                    nursery.cancel_scope.cancel()
        if problem is None:
            return
        # A free port can be taken between our check and the peer's bind (by anything else
        # on the machine): that is the suite's bad luck, not the peer's failure.
        if PORT_TAKEN not in problem.lower() or attempt == START_ATTEMPTS - 1:
            raise PeerStartError(problem)  # raised out here, not wrapped in the nursery's group


async def _watch_exit(peer: PeerUnderTest) -> None:
    assert peer.process is not None
    await peer.process.wait()
    peer.exited.set()


async def _listening_problem(peer: PeerUnderTest, timeout: float) -> str | None:
    """Wait until the peer listens: None, or why it never did."""
    where = f"{peer.host}:{peer.port}"
    with trio.move_on_after(timeout):
        while not peer.exited.is_set():
            try:
                stream = await trio.open_tcp_stream(peer.host, peer.port)
            except OSError:
                await trio.sleep(POLL_INTERVAL)
                continue
            await stream.aclose()
            return None
        return f"{peer.exit_detail()} before listening on {where}"
    return f"nothing listened on {where} within {timeout:.0f}s"


async def _stop(peer: PeerUnderTest) -> None:
    process = peer.process
    assert process is not None
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if peer.exited.is_set():
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)  # the group is the session we created for it
        with trio.move_on_after(STOP_GRACE):
            await peer.exited.wait()
    if process.stdin is not None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await process.stdin.aclose()
