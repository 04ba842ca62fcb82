"""Many engines in one process (``engine/simnet.py``): the real relay code, no sockets."""

from __future__ import annotations

from whisper.engine.simnet import SimNet
from whisper.events import GaveUp, PeerLinked
from whisper.flood import FloodConfig
from whisper.peers import ConnectionConfig


def addr(i: int) -> str:
    return f"10.0.{i // 250}.{i % 250 + 1}:5"


def test_a_chain_becomes_a_mesh_and_every_message_arrives_exactly_once():
    net = SimNet()
    names = [addr(i) for i in range(5)]
    for i, name in enumerate(names):
        net.add(name, peers=names[i - 1 : i] if i else [])
    net.run()
    for name in reversed(names):  # those with a link speak first; the rest learn from Addr
        net.say(name, f"hello from {name}")
    for name in names:
        net.say(name, f"again from {name}")
    for name in names:
        others = [n for n in names if n != name]
        expected = sorted(f"{w} from {o}" for w in ("hello", "again") for o in others)
        assert sorted(net.peers[name].bodies) == expected, name  # each exactly once
        assert sorted(net.linked(name)) == others
    assert sum(p.engine.stats.duplicates for p in net.peers.values()) > 0  # the flood echoed


def test_a_peer_that_goes_away_is_retried_then_given_up():
    net = SimNet()
    a = net.add(addr(0), connections=ConnectionConfig(max_failures=3))
    net.add(addr(1))
    net.connect(addr(0), addr(1))
    assert [e for e in a.events if type(e) is PeerLinked] == [PeerLinked(addr(1))]
    net.remove(addr(1))
    net.advance(60)
    gave_up = [e for e in a.events if isinstance(e, GaveUp)]
    assert [e.addr for e in gave_up] == [addr(1)] and net.linked(addr(0)) == []


def test_three_hundred_peers_in_a_ring_all_hear_one_message():
    net = SimNet()
    n = 300
    for i in range(n):
        net.add(addr(i), peers=[addr(i - 1)] if i else [])
    net.connect(addr(0), addr(n - 1))
    net.say(addr(n // 2), "to everyone")
    heard = [i for i in range(n) if net.peers[addr(i)].bodies == ["to everyone"]]
    assert len(heard) == n - 1  # all but its author, once each


def test_a_paced_connection_is_read_later_and_nothing_is_lost():
    """Flood control's work tokens (200 objects a second here, 40 at once): of 100 messages
    40 are read now; the link is not read again until tokens come; nothing is lost."""
    net = SimNet()
    quiet = FloodConfig(conn_rate=50, conn_burst=5000, conn_start=5000, origin_burst=5000)
    net.add(addr(0), flood=quiet)
    net.add(addr(1), peers=[addr(0)])
    net.run()
    for i in range(100):
        net.say(addr(1), f"m{i}")
    receiver = net.peers[addr(0)]
    assert 0 < len(receiver.bodies) < 100 and receiver.engine.stats.paced >= 1
    net.advance(1)
    assert receiver.bodies == [f"m{i}" for i in range(100)]


def test_in_a_chain_nobody_speaks_yet_everyone_knows_who_is_here():
    """Hello and presence (PROTOCOL.md §7.10, §7.11): each newcomer dials one peer, is
    dialled back, and is told who is here; its own announcement floods the chain."""
    net = SimNet()
    names = [addr(i) for i in range(30)]
    for i, name in enumerate(names):
        net.add(name, peers=names[i - 1 : i] if i else [], nick=f"n{i}")
    net.run()
    for name in names:
        users = net.peers[name].engine.users(net.now)
        assert sorted(u.addr for u in users) == sorted(names), name
    assert all(p.bodies == [] for p in net.peers.values())
    assert sorted(net.linked(names[5])) == [names[4], names[6]]  # dialled back, no mesh
