"""UDP broadcast discovery (PROTOCOL.md §7.1): the trio task that announces and listens.

Rules (the decisions themselves are in ``discovery_policy.py``):

- ``Node.run`` starts ``run_discovery`` when ``Config.discovery`` is not None, after the
  TCP listener is bound and before it reports ready.  The first announcement is sent before
  ``task_status.started()``.
- It sees the node only through ``DiscoveryHost``: our address, the public ``peers()``
  snapshot and ``learned`` (the node's automatic dial path); nothing of its internals.
- Announcements go out from a UDP socket bound to our own address (and, where the OS allows,
  to the interface that owns it, ``SO_BINDTODEVICE``), to that interface's directed
  broadcast address only; ``check_destination`` guards every send.  A peer bound to loopback
  opens no sending socket at all.
- We listen on ``0.0.0.0:discovery_port`` with ``SO_REUSEADDR`` and ``SO_REUSEPORT``, so that
  every peer on a host shares the port and each one gets every broadcast.  A port we cannot
  bind is a warning, not a failure of the node: it goes on without hearing.
- What we hear goes through ``judge`` and ``DialPolicy`` and then to ``learned`` (never our
  own address, never one we have a link to).
  Ignored datagrams are logged at debug level, the first ``LOGGED_IGNORED`` of them.
- Send errors (interface down, firewall) are logged once per episode and never raised.
"""

from __future__ import annotations

import logging
import socket
from ipaddress import IPv4Address
from typing import Protocol

import psutil
import trio

from .addr import parse_hostport
from .discovery_policy import (
    MAX_DATAGRAM,
    Announcement,
    AnnounceSchedule,
    Decision,
    DialPolicy,
    DiscoveryConfig,
    Endpoint,
    InterfaceAddress,
    Scope,
    check_destination,
    choose_scope,
    format_datagram,
    judge,
    on_behalf,
    parse_endpoint,
)
from .engine.snapshots import PeerInfo

LOGGED_IGNORED = 20

log = logging.getLogger("whisper.discovery")


def interface_addresses() -> list[InterfaceAddress]:
    """Every IPv4 address of every interface, with its netmask and broadcast address."""
    found = []
    stats = psutil.net_if_stats()
    for name, entries in psutil.net_if_addrs().items():
        flags = getattr(stats.get(name), "flags", "").split(",")
        for entry in entries:
            if entry.family != socket.AF_INET or not entry.netmask:
                continue
            broadcast = IPv4Address(entry.broadcast) if entry.broadcast else None
            ip, netmask = IPv4Address(entry.address), IPv4Address(entry.netmask)
            found.append(InterfaceAddress(name, ip, netmask, broadcast, "broadcast" in flags))
    return found


async def open_listener(port: int) -> trio.socket.SocketType:
    """A UDP socket on 0.0.0.0:port that other peers on this host can bind as well."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        await sock.bind(("0.0.0.0", port))
    except BaseException:
        sock.close()
        raise
    return sock


async def open_sender(scope: Scope) -> trio.socket.SocketType:
    """A UDP socket that can only speak from our address, on our interface where possible."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if hasattr(socket, "SO_BINDTODEVICE"):
            try:
                device = scope.interface.encode()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device)
            except OSError as exc:  # older kernels want CAP_NET_RAW; the route is right anyway
                log.debug("discovery: cannot bind to device %s: %s", scope.interface, exc)
        await sock.bind((str(scope.ip), 0))
    except BaseException:
        sock.close()
        raise
    return sock


class DiscoveryHost(Protocol):
    """What discovery needs of the node (``Node`` is one)."""

    @property
    def addr(self) -> str: ...
    def peers(self) -> list[PeerInfo]: ...
    def learned(self, addr: str) -> bool: ...


class Discovery:
    """One node's discovery: a listener task and an announcer task around the pure policy."""

    def __init__(self, node: DiscoveryHost, scope: Scope, port: int, interval: float) -> None:
        self.node = node
        self.scope = scope
        self.port = port
        self.own = parse_endpoint(node.addr)
        self.schedule = AnnounceSchedule(interval)
        self.policy = DialPolicy()
        self.sender: trio.socket.SocketType | None = None
        self.ignored = 0
        self.sent = 0
        self._wake = trio.Event()
        self._send_failing = False

    async def listen(self, sock: trio.socket.SocketType) -> None:
        while True:
            try:
                data, source = await sock.recvfrom(MAX_DATAGRAM + 1)
            except OSError as exc:  # not expected on an unconnected UDP socket: stop hearing
                log.warning("discovery: stopped listening: %s", exc)
                return
            self.hear(data, source[0])

    def hear(self, data: bytes, source: str) -> None:
        verdict = judge(data, source, self.scope, self.node.addr)
        if isinstance(verdict, str):
            self._ignored(f"from {source}: {verdict}")
            return
        addr = str(verdict)
        if any(p.outgoing and p.addr == addr for p in self.node.peers()):
            return
        decision = self.policy.decide(addr, trio.current_time())
        if decision is not Decision.DIAL:
            self._ignored(f"{addr}: {decision.value}")
            return
        if self.node.learned(addr):
            log.info("discovered %s", addr)
            self.schedule.heard_new()
            self._wake.set()

    def _ignored(self, why: str) -> None:
        self.ignored += 1
        if self.ignored <= LOGGED_IGNORED:
            log.debug("discovery: ignored a datagram %s", why)
            if self.ignored == LOGGED_IGNORED:
                log.debug("discovery: not logging further ignored datagrams")

    async def announce_forever(self) -> None:
        while True:
            with trio.move_on_at(self.schedule.deadline()):
                await self._wake.wait()
            self._wake = trio.Event()
            await self.announce_due()

    async def announce_due(self) -> None:
        kind = self.schedule.poll(trio.current_time())
        if kind is None or self.own is None:
            return
        endpoints = [self.own]
        if kind is Announcement.ROUND:
            known = [p.addr for p in self.node.peers() if p.outgoing and p.connected]
            own = str(self.own)
            endpoints += on_behalf(known, self.scope, own, self.schedule.rounds)
        for endpoint in endpoints:
            await self._send(endpoint)

    async def _send(self, endpoint: Endpoint) -> None:
        assert self.sender is not None and self.scope.target is not None
        check_destination(self.scope, self.scope.target)
        try:
            await self.sender.sendto(format_datagram(endpoint), (str(self.scope.target), self.port))
        except OSError as exc:
            if not self._send_failing:
                log.warning("discovery: cannot announce on %s: %s", self.scope.interface, exc)
            self._send_failing = True
            return
        if self._send_failing:
            log.info("discovery: announcing on %s again", self.scope.interface)
        self._send_failing = False
        self.sent += 1


async def run_discovery(
    node: DiscoveryHost,
    config: DiscoveryConfig,
    bound: str,
    *,
    task_status: trio.TaskStatus[Discovery | None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Announce and listen for ``node`` (bound to the IP ``bound``) until cancelled (see the
    module's rules)."""
    port = config.port
    scope = choose_scope(bound, parse_hostport(node.addr)[0], interface_addresses())
    if scope is None:
        log.info("discovery off: no IPv4 interface owns %s", node.addr)
        task_status.started(None)
        return
    discovery = Discovery(node, scope, port, config.interval)
    try:
        listener = await open_listener(port)
    except OSError as exc:
        log.warning("discovery: cannot listen on UDP port %d: %s", port, exc)
        listener = None
    try:
        await _announce_and_listen(discovery, listener, task_status)
    finally:
        if listener is not None:
            listener.close()


async def _announce_and_listen(
    discovery: Discovery,
    listener: trio.socket.SocketType | None,
    task_status: trio.TaskStatus[Discovery | None],
) -> None:
    scope, own = discovery.scope, discovery.own
    if scope.loopback:
        log.debug("discovery: not announcing: bound to loopback")
    elif scope.target is None:
        log.info("discovery: not announcing: %s has no broadcast address", scope.interface)
    elif own is None or not scope.admits(own.ip):
        log.info("discovery: not announcing: %s is not on %s", discovery.node.addr, scope.network)
    else:
        try:
            discovery.sender = await open_sender(scope)
        except OSError as exc:
            log.warning("discovery: cannot announce from %s: %s", scope.ip, exc)
    try:
        async with trio.open_nursery() as nursery:
            if discovery.sender is not None:
                await discovery.announce_due()  # the one at start, before we report ready
                nursery.start_soon(discovery.announce_forever)
            if listener is not None:
                nursery.start_soon(discovery.listen, listener)
            task_status.started(discovery)
    finally:
        if discovery.sender is not None:
            discovery.sender.close()
