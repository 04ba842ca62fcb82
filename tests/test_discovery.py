"""UDP discovery: the command line, the task on loopback, and what it sends (to a fake socket).

Every datagram these tests send goes to 127.0.0.1 or 127.255.255.255, which the kernel's
local routing table keeps on ``lo``; every address they announce is a loopback one, so even a
broken scope filter could only make a node dial this machine.  Announcements on a LAN scope
go to a fake socket.  The pure part is in ``test_discovery_policy.py``; real broadcast
between hosts in ``test_discovery_netns.py``.
"""

from __future__ import annotations

import logging
import socket
from ipaddress import IPv4Address

import pytest
import trio

from whisper import cli
from whisper.addr import AddressError
from whisper.discovery import LOGGED_IGNORED, Discovery, run_discovery
from whisper.discovery_policy import (
    LIMITED_BROADCAST,
    DiscoveryConfig,
    Endpoint,
    Scope,
    UnsafeDestination,
)
from whisper.engine import PeerInfo

from .helpers import LOCAL, outgoing, sink, start_node
from .test_discovery_policy import ETH, GARBAGE, LAN

TIMEOUT = 10


# -- the command line ----------------------------------------------------------------------


def _config(*argv: str):
    return cli.config_from_args(cli.build_parser().parse_args(["-host", LOCAL, *argv]))


def test_cli_flags():
    assert _config().discovery is None  # bound to loopback: only when asked for
    assert _config("-discovery-port", "7000").discovery == DiscoveryConfig(7000)
    assert _config("--discovery-port", "7000", "--no-discovery").discovery is None
    assert _config("-no-discovery").discovery is None
    with pytest.raises(AddressError):
        _config("-discovery-port", "0")


# -- the task on loopback ------------------------------------------------------------------


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("0.0.0.0", 0))
        return probe.getsockname()[1]


def datagrams(port: int, *payloads: bytes, to: str = LOCAL) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        out.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        out.bind((LOCAL, 0))
        for payload in payloads:
            out.sendto(payload, (to, port))


async def discovering(nursery: trio.Nursery, port: int) -> Discovery:
    """A loopback node and its discovery task, started by hand so that the test can see it."""
    node = await start_node(nursery, discovery=None)
    discovery = await nursery.start(run_discovery, node, DiscoveryConfig(port), LOCAL)
    assert discovery is not None
    return discovery


async def test_dials_what_it_hears_never_itself_never_twice_ignores_garbage(nursery, caplog):
    caplog.set_level(logging.DEBUG, logger="whisper.discovery")
    port = free_udp_port()
    discovery = await discovering(nursery, port)
    node = discovery.node
    first, marker = await sink(nursery), await sink(nursery)
    with trio.fail_after(TIMEOUT):
        datagrams(port, *GARBAGE, node.addr.encode(), first.addr.encode())
        await first.wait_for(lambda s: s.connections == 1)
        datagrams(port, first.addr.encode(), first.addr.encode(), marker.addr.encode())
        await marker.wait_for(lambda s: s.connections == 1)
    assert first.connections == 1
    assert set(outgoing(node)) == {first.addr, marker.addr}
    assert discovery.ignored == len(GARBAGE) + 1
    logged = [r.message for r in caplog.records if "ignored a datagram" in r.message]
    assert len(logged) == LOGGED_IGNORED and "garbage" in logged[0]


async def test_two_nodes_share_the_port_and_both_hear_a_broadcast(nursery):
    port = free_udp_port()
    a = await start_node(nursery, discovery=DiscoveryConfig(port))
    b = await start_node(nursery, discovery=DiscoveryConfig(port))
    target = await sink(nursery)
    with trio.fail_after(TIMEOUT):
        datagrams(port, target.addr.encode(), to="127.255.255.255")  # local table: dev lo
        await target.wait_for(lambda s: s.connections == 2)
        datagrams(port, a.addr.encode(), to="127.255.255.255")
        with b.subscribe() as events:
            while a.addr not in outgoing(b):  # a ignores itself, b dials it
                await events.receive()
    assert b.addr not in outgoing(a) and a.addr not in outgoing(a)


async def test_loopback_node_opens_no_sending_socket(nursery):
    discovery = await discovering(nursery, free_udp_port())
    assert discovery.scope.loopback and discovery.scope.target is None
    assert discovery.sender is None and discovery.sent == 0


async def test_a_port_we_cannot_share_is_a_warning_not_a_failure(nursery, caplog):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:  # no SO_REUSE*
        holder.bind(("0.0.0.0", 0))
        node = await start_node(nursery, discovery=DiscoveryConfig(holder.getsockname()[1]))
    assert node.addr and any("cannot listen on UDP" in r.message for r in caplog.records)


# -- what the task sends (to a fake socket: nothing leaves the process) --------------------


class FakeSocket:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    async def sendto(self, data: bytes, address: tuple[str, int]) -> int:
        self.sent.append((data, address))
        return len(data)


class FakeNode:
    """What discovery sees of a node (``DiscoveryHost``): its address, peers and dial path."""

    addr = "10.77.0.5:7000"

    def __init__(self, peers: dict[str, bool]) -> None:
        self._peers = [
            PeerInfo(addr, True, "connected" if up else "connecting", 0.0)
            for addr, up in peers.items()
        ]
        self.learned_addrs: list[str] = []

    def peers(self) -> list[PeerInfo]:
        return self._peers

    def learned(self, addr: str) -> bool:
        self.learned_addrs.append(addr)
        return True


def lan_discovery(scope: Scope, peers: dict[str, bool]) -> tuple[Discovery, FakeSocket]:
    discovery = Discovery(FakeNode(peers), scope, 7777, interval=30.0)
    discovery.own = Endpoint(ETH.ip, 7000)
    discovery.sender = fake = FakeSocket()  # type: ignore[assignment]
    return discovery, fake


async def test_announces_own_then_connected_peers_to_the_directed_broadcast(autojump_clock):
    assert LAN is not None
    peers = {"10.77.0.10:1": True, "10.77.0.11:2": True, "10.77.0.12:3": False, "10.9.0.1:4": True}
    discovery, fake = lan_discovery(LAN, peers)
    await discovery.announce_due()
    to = ("10.77.0.255", 7777)
    assert fake.sent == [(b"10.77.0.5:7000", to), (b"10.77.0.10:1", to), (b"10.77.0.11:2", to)]
    await discovery.announce_due()
    assert len(fake.sent) == 3  # nothing more is due
    discovery.schedule.heard_new()
    await trio.sleep(1.0)
    await discovery.announce_due()
    assert fake.sent[3:] == [(b"10.77.0.5:7000", to)]  # a reply: our own address only


async def test_the_send_guard_refuses_an_unsafe_destination():
    assert LAN is not None
    for target in (LIMITED_BROADCAST, IPv4Address("10.77.1.255"), IPv4Address("127.255.255.255")):
        scope = Scope(LAN.interface, LAN.ip, LAN.network, target)
        discovery, fake = lan_discovery(scope, {})
        with pytest.raises(UnsafeDestination):
            await discovery.announce_due()
        assert fake.sent == []
