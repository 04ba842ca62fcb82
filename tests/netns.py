"""Private hosts for tests: Linux network namespaces joined by veth pairs (iproute2, as root).

Rules:
- ``lab()`` creates namespaces with names unique to this process and run, and deletes them
  (with their veth ends) when the block ends, however it ends.  Nothing is created in the
  machine's own namespace: every veth end is created directly inside a lab namespace.
- Where the kernel or our permissions refuse (not Linux, not root, no ``ip``, no netns or
  veth support), ``namespaces()`` raises ``Refused`` with the reason, and ``lab()`` (for
  tests) skips the test with it.  The benchmarks use ``namespaces()``.
- Addresses are private (10.77.0.0/16) and exist only inside the namespaces.
- ``inside(ns)`` tells a process whether it runs in lab namespace ``ns``: code that starts a
  peer which would speak to the LAN (the Go peer) checks it first.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trio

from .proc import WHISPER, Whisper

SNIFFER = Path(__file__).with_name("netns_sniff.py")


class Refused(Exception):
    """The machine cannot give us a lab (the message says why)."""


class Lab:
    def __init__(self) -> None:
        self.prefix = f"wdisc{os.getpid()}{secrets.token_hex(3)}"
        self.namespaces: list[str] = []

    def host(self, name: str) -> str:
        """A new namespace (its loopback up); returns its full name."""
        full = f"{self.prefix}{name}"
        _ip_or_refuse("netns", "add", full)
        self.namespaces.append(full)
        _ip_or_refuse("-n", full, "link", "set", "lo", "up")
        return full

    def wire(self, ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
        """A veth pair with one end in each namespace, both up."""
        _ip_or_refuse(
            "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b
        )
        ip("-n", ns_a, "link", "set", if_a, "up")
        ip("-n", ns_b, "link", "set", if_b, "up")

    def lan(self, ns: str, cidr: str) -> None:
        """Give ``ns`` a LAN address of its own, for peers that insist on a non-loopback one.

        The address sits on ``lan0``, one end of a veth pair whose other end (``lan1``) is in
        the same namespace, and the default route goes out ``lan0``, so that even a datagram
        to 255.255.255.255 has a route (the Go peer exits without one) and stays inside.
        """
        self.wire(ns, "lan0", ns, "lan1")
        self.ip_addr(ns, "lan0", cidr)
        ip("-n", ns, "route", "add", "default", "dev", "lan0")

    def ip_addr(self, ns: str, interface: str, cidr: str) -> None:
        ip("-n", ns, "addr", "add", cidr, "dev", interface)

    def ip(self, *args: str) -> None:
        ip(*args)

    def bridge(self, ns: str, name: str, *ports: str) -> None:
        _ip_or_refuse("-n", ns, "link", "add", name, "type", "bridge")
        for port in ports:
            ip("-n", ns, "link", "set", port, "master", name)
        ip("-n", ns, "link", "set", name, "up")

    def close(self) -> None:
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self.namespaces.clear()


def ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def _ip_or_refuse(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode:
        raise Refused(f"the kernel refused 'ip {' '.join(args)}': {result.stderr.strip()}")


@contextmanager
def namespaces() -> Iterator[Lab]:
    """A lab, or ``Refused``; its namespaces are deleted when the block ends."""
    if not sys.platform.startswith("linux"):
        raise Refused("network namespaces are Linux-only")
    if os.geteuid() != 0:
        raise Refused("creating network namespaces needs root")
    if shutil.which("ip") is None:
        raise Refused("iproute2's 'ip' is not installed")
    the_lab = Lab()
    try:
        probe = the_lab.host("probe")
        result = subprocess.run(["ip", "netns", "exec", probe, "true"], capture_output=True)
        if result.returncode:
            raise Refused(f"'ip netns exec' refused: {result.stderr.decode().strip()}")
        yield the_lab
    finally:
        the_lab.close()


@contextmanager
def lab() -> Iterator[Lab]:
    """``namespaces()`` for a test: a refusal skips it."""
    import pytest

    try:
        with namespaces() as the_lab:
            yield the_lab
    except Refused as exc:
        pytest.skip(str(exc))


def inside(ns: str) -> bool:
    """True if this process runs in the lab namespace ``ns`` (as ``ip netns exec`` puts it)."""
    try:
        here, there = os.stat("/proc/self/ns/net"), os.stat(f"/run/netns/{ns}")
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


class InNamespace(Whisper):
    """A process run with ``ip netns exec``, its output read line by line."""

    def __init__(self, ns: str, *argv: str) -> None:
        super().__init__()
        self.args = ["ip", "netns", "exec", ns, *argv]


def whisper_in(ns: str, *args: str) -> InNamespace:
    return InNamespace(ns, *WHISPER, *args)


def sniffer_in(ns: str, interface: str) -> InNamespace:
    return InNamespace(ns, sys.executable, str(SNIFFER), interface)


@contextmanager
def explained(processes: list[InNamespace]) -> Iterator[None]:
    """On a timeout, fail with what each process printed."""
    try:
        yield
    except trio.TooSlowError:
        report = "\n".join(
            f"--- {' '.join(p.args[4:])}\n" + "\n".join(p.stderr[-30:] + p.stdout[-30:])
            for p in processes
        )
        raise AssertionError(f"timed out; the processes printed:\n{report}") from None
