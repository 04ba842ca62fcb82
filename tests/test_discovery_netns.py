"""UDP discovery for real: whisper processes on separate hosts (network namespaces).

Loopback alone does not exercise broadcast, so these tests build private hosts with
``ip netns`` (``tests/netns.py``; skipped where the kernel or permissions refuse).  All traffic
stays inside the namespaces the tests create: 10.77.0.0/24 exists nowhere else.
"""

from __future__ import annotations

import json
import random
import sys

import trio

from .netns import InNamespace, explained, lab, sniffer_in, whisper_in

TIMEOUT = 15
SUBNET = "10.77.0"


def _port() -> int:
    return random.randrange(20000, 30000)


async def test_peers_on_separate_hosts_find_each_other_without_peer_flags():
    port = str(_port())
    with lab() as net:
        hub = net.host("hub")
        hosts = [net.host(f"p{i}") for i in (1, 2, 3)]
        for i, ns in enumerate(hosts, 1):
            net.wire(ns, "eth0", hub, f"port{i}")
            net.ip_addr(ns, "eth0", f"{SUBNET}.{i}/24")
        net.bridge(hub, "br0", "port1", "port2", "port3")
        async with trio.open_nursery() as nursery:
            peers: list[InNamespace] = []
            with explained(peers), trio.fail_after(TIMEOUT):
                for i, ns in enumerate(hosts, 1):
                    args = ["-host", f"{SUBNET}.{i}", "-port", "0", "-headless", "-nick", f"p{i}"]
                    peers.append(whisper_in(ns, *args, "-discovery-port", port))
                    await peers[-1].start(nursery)
                for peer in peers:
                    for other in peers:
                        if other is not peer:
                            await peer.wait_line("stderr", f"connected to {other.addr}$")
                p1, p2, p3 = peers
                await p1.type("hello from p1")
                await p2.wait_line("stdout", "^p1: hello from p1$")
                await p3.wait_line("stdout", "^p1: hello from p1$")
                await p3.type("and back from p3")
                await p1.wait_line("stdout", "^p3: and back from p3$")
                await p2.wait_line("stdout", "^p3: and back from p3$")
            assert not any("-peer" in arg for peer in peers for arg in peer.args)
            nursery.cancel_scope.cancel()


async def test_a_peer_bound_to_loopback_sends_nothing_off_the_host():
    """Only the control peer's announcements and the canary reach the wire."""
    port = _port()
    with lab() as net:
        host, lan = net.host("host"), net.host("lan")
        net.wire(host, "eth0", lan, "eth0")
        net.ip_addr(host, "eth0", f"{SUBNET}.1/24")
        net.ip_addr(lan, "eth0", f"{SUBNET}.2/24")
        net.ip("-n", host, "route", "add", "default", "via", f"{SUBNET}.2")
        async with trio.open_nursery() as nursery:
            sniffer = sniffer_in(lan, "eth0")
            peers: list[InNamespace] = [sniffer]
            with explained(peers), trio.fail_after(TIMEOUT):
                await sniffer.start(nursery, wait_listening=False)
                await sniffer.wait_line("stdout", "^ready$")
                common = ["-port", "0", "-headless", "-discovery-port", str(port)]
                local = whisper_in(host, "-host", "127.0.0.1", *common, "-vv")
                control = whisper_in(host, "-host", f"{SUBNET}.1", *common)
                peers += [local, control]
                await local.start(nursery)
                await control.start(nursery)
                await sniffer.wait_line("stdout", f'"payload": "{control.addr}"')
                # The local peer heard the control's broadcast (looped back) and ignored it.
                await local.wait_line("stderr", f"ignored a datagram from {SUBNET}.1: .*outside")
                # A canary sent the naive way, to 255.255.255.255, does reach the sniffer.
                await canary(nursery, host, port)
                await sniffer.wait_line("stdout", '"payload": "canary"')
            nursery.cancel_scope.cancel()
    captured = [json.loads(line) for line in sniffer.stdout if line.startswith("{")]
    ours = [p for p in captured if p["dport"] == port]
    assert {p["payload"] for p in ours} == {control.addr, "canary"}, ours
    assert all(p["dst"] == f"{SUBNET}.255" for p in ours if p["payload"] == control.addr)
    assert not [p for p in captured if p["src"].startswith("127.") or "127.0.0.1" in p["payload"]]
    assert not any("discovered" in line for line in local.stderr)


async def canary(nursery: trio.Nursery, ns: str, port: int) -> None:
    code = (
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1); "
        f"s.sendto(b'canary', ('255.255.255.255', {port}))"
    )
    sender = InNamespace(ns, sys.executable, "-c", code)
    await sender.start(nursery, wait_listening=False)
    assert await sender.process.wait() == 0
