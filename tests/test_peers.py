"""Peer table dial policy and the per-link send queue: pure state."""

from __future__ import annotations

import random

from whisper.peers import PeerTable, State
from whisper.sendqueue import SendQueue


def close() -> None:
    pass


def table(**kw) -> PeerTable:
    return PeerTable("10.0.0.1:5", rng=random.Random(1), **kw)


def test_never_dial_self_or_twice():
    t = table()
    assert not t.should_dial("10.0.0.1:5", 0)
    assert t.should_dial("10.0.0.2:5", 0)
    assert not t.should_dial("10.0.0.2:5", 0)
    assert t.outgoing["10.0.0.2:5"].state is State.CONNECTING


def test_max_outgoing():
    t = table(max_outgoing=2)
    assert t.should_dial("a:1", 0) and t.should_dial("a:2", 0)
    assert not t.should_dial("a:3", 0)


def test_backoff_grows_then_gives_up():
    t = table(max_failures=4, backoff_base=1.0, backoff_max=3.0)
    t.should_dial("a:1", 0)
    delays = [t.failed("a:1", 0, "refused") for _ in range(3)]
    assert 0.75 <= delays[0] <= 1.25
    assert 1.5 <= delays[1] <= 2.5
    assert 2.25 <= delays[2] <= 3.75  # capped at 3 before jitter
    assert t.outgoing["a:1"].state is State.BACKOFF
    assert t.failed("a:1", 0, "refused") is None
    assert "a:1" not in t.outgoing and t.given_up() == ["a:1"]


def test_a_link_that_lasted_resets_failures():
    t = table(max_failures=2, stable_after=10)
    t.should_dial("a:1", 0)
    t.failed("a:1", 0, "x")
    t.connected("a:1", 1)
    assert t.connected_outgoing() == 1
    assert t.failed("a:1", 11, "y") is not None  # up for 10 s: a new run of failures
    assert t.outgoing["a:1"].failures == 1


def test_a_peer_that_hangs_up_at_once_keeps_failing():
    t = table(max_failures=3, stable_after=10)
    t.should_dial("a:1", 0)
    t.failed("a:1", 0, "refused")
    t.connected("a:1", 1)
    assert t.failed("a:1", 2, "peer closed the connection") is not None
    t.connected("a:1", 3)
    assert t.failed("a:1", 4, "peer closed the connection") is None  # given up
    assert t.given_up() == ["a:1"]


def test_a_peer_that_keeps_stalling_is_given_up_on_however_long_each_link_lasted():
    """A stall ends a link only after 10 s without progress, so a link that stalls has
    always been up 10 s: that reset the count, and a listener that never reads was redialled
    (and replayed our backlog) every 10.5 s for ever."""
    t = table(max_failures=3, stable_after=10)
    t.should_dial("a:1", 0)
    now = 0.0
    for _ in range(2):
        t.connected("a:1", now)
        now += 60
        assert t.failed("a:1", now, "stalled", stalled=True) is not None
    t.connected("a:1", now)
    assert t.failed("a:1", now + 60, "stalled", stalled=True) is None
    assert t.given_up() == ["a:1"]


def test_given_up_not_redialled_by_messages_for_a_while_but_by_user():
    t = table(max_failures=1, give_up_for=100)
    t.should_dial("a:1", 0)
    assert t.failed("a:1", 0, "refused") is None
    assert not t.should_dial("a:1", 50)
    assert t.should_dial("a:1", 50, by_user=True)
    t.forget("a:1", 60)
    assert not t.should_dial("a:1", 100)
    assert t.should_dial("a:1", 161)


def test_addresses_given_up_on_are_forgotten_once_the_wait_is_over():
    """A peer naming a new dead address every few seconds must not grow the table for ever."""
    t = table(max_failures=1, give_up_for=100)
    for i in range(10_000):
        now = i * 1.0
        assert t.should_dial(f"10.9.{i // 250}.{i % 250}:1", now)
        assert t.failed(f"10.9.{i // 250}.{i % 250}:1", now, "refused") is None
        if i % 2:
            t.forget(f"10.8.{i // 250}.{i % 250}:1", now)
    assert len(t.given_up()) <= 2 * 101  # those of the last 100 s, of each kind
    assert not t.should_dial("10.9.39.249:1", 10_000)  # 9999: still waiting
    assert t.should_dial("10.9.0.0:1", 10_000)


def test_incoming_caps_per_network_and_in_all():
    t = PeerTable("1.0.0.1:5", max_incoming=6, max_per_host=2)
    assert t.admit("1.0.0.9:1000", 0, close)
    assert t.admit("1.0.0.10:1001", 0, close)  # the same /24
    assert "from 1.0.0.0/24 already" in t.admit("1.0.0.11:1002", 0, close).refused
    assert t.admit("1.0.1.8:1000", 0, close)  # another network still gets in
    for port in range(2):  # loopback and our own IP are shared by every local peer
        assert t.admit(f"127.0.0.1:{port}", 0, close)
    assert t.admit("1.0.0.1:7000", 0, close)  # our own IP, though 1.0.0.0/24 is full
    assert "6 incoming connections already" in t.admit("1.0.0.1:7001", 0, close).refused
    t.closed("1.0.0.9:1000")
    assert t.admit("1.0.0.11:1002", 0, close)
    assert len(t.incoming) == 6


def test_on_a_private_network_the_cap_is_per_machine():
    """A workshop room: 40 peers on one LAN /24 each link to us."""
    t = PeerTable("192.168.1.2:5", max_per_host=2)
    for i in range(40):
        assert t.admit(f"192.168.1.{10 + i}:1000", 0, close)
        assert t.admit(f"192.168.1.{10 + i}:1001", 0, close)
    assert "from 192.168.1.10 already" in t.admit("192.168.1.10:1002", 0, close).refused


def test_incoming_listing():
    t = table()
    t.admit("127.0.0.1:4000", 0, close)
    assert list(t.incoming) == ["127.0.0.1:4000"]
    t.closed("127.0.0.1:4000")
    assert not t.incoming


def test_queue_batches_and_bounds():
    q = SendQueue(max_bytes=100, max_items=3, batch_bytes=50)
    assert q.put(b"a" * 40) and q.put(b"b" * 20) and q.put(b"c" * 5)
    assert not q.put(b"d", now=7.0)  # items full
    assert q.dropped == 1 and q.overflowing_since == 7.0
    assert q.take() == b"a" * 40  # next would pass the batch size
    assert q.overflowing_since is None
    assert q.take() == b"b" * 20 + b"c" * 5
    assert q.take() == b""
    assert q.put(b"x" * 100) and not q.put(b"y")  # bytes full
    assert q.take() == b"x" * 100  # one message bigger than a batch still goes
    assert len(q) == 0 and q.nbytes == 0
