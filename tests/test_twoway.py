"""Two-way links (``engine/twoway.py``, PROTOCOL.md §7.12): a peer nobody can dial
(``-no-listen``) sends and receives everything over the connections it opens.

On loopback, and in network namespaces where a firewall rule drops every connection to the
NAT'd host (``iptables``; skipped where namespaces or iptables are refused).
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess

import pytest
import trio

from whisper.codec import encode_object
from whisper.config import Config
from whisper.engine import Dial, Engine, Retry
from whisper.engine.actions import Reverse
from whisper.engine.twoway import FIND_OUT, TWOWAY
from whisper.peers import Peer

from .netns import explained, lab, whisper_in
from .proc import Whisper

TIMEOUT = 30
QUIET = ["-headless", "-no-discovery", "-no-history"]
LOOPBACK = ["-host", "127.0.0.1", *QUIET]
SHOWN = r"(\[history \S+\] )?"


async def chat(peers: dict[str, Whisper]) -> None:
    """Each says a line; every other one shows it."""
    for nick, peer in peers.items():
        await peer.type(f"hi from {nick}")
    for nick, peer in peers.items():
        for other in peers:
            if other != nick:
                await peer.wait_line("stdout", rf"^{SHOWN}{other}: hi from {other}$")


@pytest.mark.parametrize("routing", ["overlay", "flood"])
async def test_a_peer_that_does_not_listen_sends_and_receives_everything(nursery, routing):
    with trio.fail_after(TIMEOUT):
        flags = [*LOOPBACK, "-routing", routing, "-port", "0"]
        alice = await Whisper(*flags, "-nick", "alice").start(nursery)
        bob = await Whisper(*flags, "-nick", "bob", "-peer", alice.addr).start(nursery)
        port = str(random.randrange(20000, 30000))  # names it in Addr; nothing listens there
        nat = Whisper(*LOOPBACK, "-routing", routing, "-port", port, "-no-listen", "-nick", "nat")
        nat.args += ["-peer", alice.addr]
        await nat.start(nursery)
        await alice.wait_line("stderr", f"connected to 127.0.0.1:{port}")  # its own connection
        await chat({"alice": alice, "bob": bob, "nat": nat})
        for peer in (alice, bob, nat):
            assert await peer.stop() == 0


@pytest.mark.parametrize("told", [True, False], ids=["no-listen", "found-out"])
async def test_behind_a_firewall_that_drops_incoming_connections(nursery, told):
    """Told (``-no-listen``), or listening in vain until it finds out (``FIND_OUT``)."""
    if shutil.which("iptables") is None:
        pytest.skip("iptables is not installed (apt-get install iptables)")
    port = str(random.randrange(20000, 30000))
    with lab() as net:
        hub = net.host("hub")
        hosts = {name: net.host(name) for name in ("alice", "bob", "nat")}
        for i, ns in enumerate(hosts.values(), start=1):
            net.wire(ns, "eth0", hub, f"port{i}")
            net.ip_addr(ns, "eth0", f"10.77.2.{i}/24")
        net.bridge(hub, "br0", "port1", "port2", "port3")
        rule = ["INPUT", "-p", "tcp", "--syn", "-j", "DROP"]  # nobody can connect to it
        done = subprocess.run(["ip", "netns", "exec", hosts["nat"], "iptables", "-A", *rule])
        if done.returncode:
            pytest.skip("iptables refused to add a rule in the namespace")
        common = [*QUIET, "-port", port]
        alice = whisper_in(hosts["alice"], "-host", "10.77.2.1", *common, "-nick", "alice")
        bob = whisper_in(hosts["bob"], "-host", "10.77.2.2", *common, "-nick", "bob")
        nat = whisper_in(hosts["nat"], "-host", "10.77.2.3", *common, "-nick", "nat")
        bob.args += ["-peer", f"10.77.2.1:{port}"]
        nat.args += ["-peer", f"10.77.2.1:{port}", "-peer", f"10.77.2.2:{port}"]
        nat.args += ["-no-listen"] if told else []
        processes = [alice, bob, nat]
        with explained(processes), trio.fail_after(TIMEOUT + (0 if told else 3 * FIND_OUT)):
            for process in processes:
                await process.start(nursery)
            await alice.wait_line("stderr", f"connected to 10.77.2.3:{port}")
            await chat({"alice": alice, "bob": bob, "nat": nat})
            for process in processes:
                assert await process.stop() == 0


# -- the engine, sans-IO ------------------------------------------------------------------


def hello(addr: str, **extra) -> bytes:
    return encode_object({"Ctl": "hello", "Addr": addr, "Nick": "nat", **extra})


def test_the_listener_adopts_a_connection_whose_hello_asks_for_it():
    engine = Engine(Config(discovery=None))
    engine.start("127.0.0.1:5000", 0.0)
    conn, _ = engine.open_incoming("127.0.0.1:40001", 0.0)
    actions = engine.receive_data(conn, hello("127.0.0.1:6000", Reverse=True), 0.0)
    assert [a for a in actions if type(a) is Dial] == []  # not dialled: written back
    (reverse,) = [a for a in actions if type(a) is Reverse]
    assert reverse.conn is conn and reverse.link.reverse and reverse.link.addr == "127.0.0.1:6000"
    assert engine.table.outgoing["127.0.0.1:6000"] is reverse.link
    failed = engine.link_failed(reverse.link, "connection closed", 1.0)
    assert [type(a) for a in failed if type(a) is Retry] == []  # never redialled
    assert "127.0.0.1:6000" not in engine.table.outgoing


def test_a_hello_without_reverse_is_dialled_back_as_always():
    engine = Engine(Config(discovery=None))
    engine.start("127.0.0.1:5000", 0.0)
    conn, _ = engine.open_incoming("127.0.0.1:40001", 0.0)
    actions = engine.receive_data(conn, hello("127.0.0.1:6000"), 0.0)
    assert [type(a) for a in actions if type(a) in (Dial, Reverse)] == [Dial]


def test_only_a_peer_that_cannot_be_dialled_asks_and_only_a_listener_that_speaks_twoway():
    nat = Engine(Config(discovery=None, listen=False))
    nat.start("127.0.0.1:6000", 0.0)
    nat.connect("127.0.0.1:5000", 0.0)
    link = nat.table.outgoing["127.0.0.1:5000"]
    nat.link_connected(link, 0.0)
    nat.link_speaks(link, frozenset({"hello", TWOWAY}), 0.0)
    first = json.loads(nat.data_to_send(link).splitlines()[0])
    assert first["Ctl"] == "hello" and first["Reverse"] is True and TWOWAY in first["Speaks"]
    old = Engine(Config(discovery=None, listen=False))
    old.start("127.0.0.1:6001", 0.0)
    old.connect("127.0.0.1:5001", 0.0)
    link = old.table.outgoing["127.0.0.1:5001"]
    old.link_connected(link, 0.0)
    old.link_speaks(link, frozenset({"hello"}), 0.0)  # an older whisper's banner
    assert "Reverse" not in json.loads(old.data_to_send(link).splitlines()[0])


def linked_engine(**changes) -> tuple[Engine, Peer]:
    engine = Engine(Config(discovery=None, **changes))
    engine.start("127.0.0.1:6000", 0.0)
    engine.connect("127.0.0.1:5000", 0.0)
    link = engine.table.outgoing["127.0.0.1:5000"]
    engine.link_connected(link, 0.0)
    engine.link_speaks(link, frozenset({"hello", TWOWAY}), 0.0)
    assert "Reverse" not in json.loads(engine.data_to_send(link).splitlines()[0])
    return engine, link


def test_a_peer_nobody_dials_finds_out_and_asks_for_two_way_links():
    engine, link = linked_engine()
    at, _ = engine.tick(1.0)
    assert at == FIND_OUT  # the link came up at 0
    engine.tick(FIND_OUT)
    hellos = [json.loads(line) for line in engine.data_to_send(link).splitlines()]
    assert [h.get("Reverse") for h in hellos if h.get("Ctl") == "hello"] == [True]
    assert link.asked_reverse


def test_a_peer_that_was_dialled_does_not_ask():
    engine, link = linked_engine()
    engine.open_incoming("127.0.0.1:40001", 1.0)  # someone reached us
    engine.tick(FIND_OUT)
    assert not link.asked_reverse
