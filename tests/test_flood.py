"""Flood control policy (flood.py), pure and synchronous: time is a number we pass in."""

from __future__ import annotations

import argparse

import pytest

from whisper.cli import main
from whisper.flood import (
    MAX_HOSTS,
    MAX_ORIGIN_CHARS,
    MAX_ORIGINS,
    MIN_START,
    RESERVE,
    WORK_FACTOR,
    FloodConfig,
    FloodControl,
    FloodCut,
    OwnLimit,
)
from whisper.flood_flags import add_flood_flags, flood_from_args

FLOODER = "10.0.0.66:7000"
HONEST = "10.0.0.5:7000"
BOB = "10.0.0.7:7000"
DEFAULTS = FloodConfig()
FIRST = DEFAULTS.conn_start + DEFAULTS.conn_burst * RESERVE  # a fresh connection's 1,100
TICK = 0.01  # simulated time step, seconds


def deliver(conn, addr: str, now: float) -> bool:
    """One new message of ``addr`` on ``conn``, as the node counts it: an object, then a
    new message of its origin.  True if accepted."""
    return conn.count(now) and conn.admit(addr, now)


class Sender:
    """Sends new messages of one origin at a steady rate on a connection, from ``start``."""

    def __init__(self, conn, addr: str, rate: float, start: float = 0.0, burst: int = 0) -> None:
        self.conn, self.addr, self.rate = conn, addr, rate
        self.start = start
        self.due = burst  # messages owed at once (a paste, a relay's burst)
        self.sent = self.accepted = 0

    def step(self, now: float) -> None:
        if now < self.start:
            return
        self.due += self.rate * TICK
        while self.due >= 1:
            self.due -= 1
            self.sent += 1
            self.accepted += deliver(self.conn, self.addr, now)


def run(senders: list[Sender], seconds: float, start: float = 0.0) -> float:
    """Step every sender; return the time reached.  FloodCut propagates."""
    now = start
    while now < start + seconds:
        for sender in senders:
            sender.step(now)
        now += TICK
    return now


# -- honest traffic passes the defaults --------------------------------------------------


def test_200_pasted_lines_and_a_50_message_backlog_pass_the_defaults():
    control = FloodControl()
    paste = control.open("10.0.0.5:40001", 0.0)
    assert all(deliver(paste, HONEST, 0.0) for _ in range(200))
    # A newcomer's backlog replay: 50 messages, some from the same busy origin.
    backlog = control.open("10.0.0.7:40002", 0.5)
    origins = [HONEST] * 20 + [f"10.0.0.{i}:7000" for i in range(10, 40)]
    assert all(deliver(backlog, addr, 0.5) for addr in origins)
    # Ten seconds later the same user pastes 200 lines again.
    assert all(deliver(paste, HONEST, 10.0) for _ in range(200))
    assert control.stats.penalties == 0 and control.stats.over_origin == 0


def test_our_own_paste_of_200_lines_passes_and_more_than_a_burst_is_refused():
    control = FloodControl()
    for _ in range(int(DEFAULTS.origin_burst)):
        control.own(0.0)
    with pytest.raises(OwnLimit, match=r"wait 0\.1s"):
        control.own(0.0)
    control.own(1.0)  # 20 a second come back


def test_a_relay_carrying_a_busy_network_is_never_limited():
    control = FloodControl()
    relay = control.open("10.0.0.9:40000", 0.0)
    senders = [Sender(relay, f"10.1.{i // 250}.{i % 250}:7000", rate=2.0) for i in range(150)]
    senders.append(Sender(relay, HONEST, rate=DEFAULTS.origin_rate, burst=200))
    run(senders, 60.0)
    assert all(s.accepted == s.sent for s in senders)
    assert sum(s.sent for s in senders) > 60 * 300
    assert control.stats.penalties == 0


def test_copies_are_paced_and_never_penalised():
    """Every object costs a work token, copies we already have too: a relay echoing back a
    burst we took in (5,000 at once) is slowed to 2,000 a second, not blamed."""
    control = FloodControl()
    relay = control.open("10.0.0.9:40000", 0.0)
    work = DEFAULTS.conn_rate * WORK_FACTOR
    now, read = 0.0, 0
    while read < 5000:
        delay = relay.pace(now)
        if delay:
            now += delay  # the node stops reading for that long
        else:
            read += 1
    assert now == pytest.approx((5000 - work / 5) / work, abs=0.01)  # 2.3 s, not a cut
    assert relay.points == 0 and control.stats.penalties == 0
    # A busy network's relay (300 objects a second, copies and all) is never slowed.
    steady = control.open("10.0.0.8:40000", 0.0)
    assert all(steady.pace(t * 0.01) == 0.0 for t in range(6000) for _ in range(3))


# -- the per-origin budget is per connection ----------------------------------------------


def test_each_connection_has_its_own_budget_for_an_origin():
    control = FloodControl()
    a, b = control.open("10.0.0.1:1", 0.0), control.open("10.0.0.2:1", 0.0)
    assert sum(deliver(a, FLOODER, 0.0) for _ in range(300)) == 300
    assert sum(deliver(b, FLOODER, 0.0) for _ in range(300)) == 300  # a did not spend it
    assert sum(deliver(a, FLOODER, 0.0) for _ in range(300)) == 200  # a's 500 are spent
    assert sum(deliver(a, FLOODER, 1.0) for _ in range(100)) == 20  # 20 a second come back
    assert deliver(a, HONEST, 1.0)  # other origins are unaffected
    assert control.stats.over_origin == 100 + 80
    assert control.stats.penalties == 0  # over an origin's budget is dropped, never blamed


def test_forgers_on_six_connections_cannot_silence_bob():
    """Six connections at 38 a second forging bob's Addr, each under every per-connection
    limit, drained the one bucket bob shared with them: 6 of his 40 messages got through."""
    control = FloodControl()
    bob = control.open("10.0.0.7:40000", 0.0)
    relay = control.open("10.0.0.9:40000", 0.0)  # bob's messages also come relayed
    forgers = [control.open(f"10.0.0.{60 + i}:40000", 0.0) for i in range(6)]
    forged = [Sender(f, BOB, rate=38.0) for f in forgers]
    real = Sender(bob, BOB, rate=2.0)
    relayed = Sender(relay, BOB, rate=2.0)
    run([*forged, real, relayed], 20.0)
    assert real.sent == 40 and real.accepted == 40
    assert relayed.accepted == relayed.sent
    # Each forger got at most its own connection's budget for bob: 500 + 20 a second.
    for sender in forged:
        assert sender.accepted <= DEFAULTS.origin_burst + DEFAULTS.origin_rate * 20 + 1
    assert control.stats.penalties == 0 and control.stats.cut == 0
    assert control.blocked(BOB, 20.0) is None


def test_messages_forging_our_own_addr_never_spend_our_own_limit():
    """Forging our Addr at 38 a second made our user's lines refused (1 of 10 sent)."""
    control = FloodControl()
    ours = "10.0.0.5:55555"
    forger = control.open("10.0.0.66:40000", 0.0)
    run([Sender(forger, ours, rate=38.0)], 30.0)
    for i in range(10):
        control.own(30.0 + i)  # our user's ten lines: none refused
    for _ in range(int(DEFAULTS.origin_burst)):  # the bucket is full again: 500 at once
        control.own(40.0)
    with pytest.raises(OwnLimit):  # only what we sent spends it
        control.own(40.0)


def test_a_flooder_of_one_origin_is_contained_and_a_relay_of_it_is_not_limited():
    """The flood enters on one connection at 20 times the origin limit; a relay forwards the
    same origin at the full origin limit (the most a conforming relay can) with others."""
    control = FloodControl()
    flooder = control.open("10.0.0.66:40000", 0.0)
    relay = control.open("10.0.0.9:40000", 0.0)
    flood = Sender(flooder, FLOODER, rate=20 * DEFAULTS.origin_rate)
    relayed = Sender(relay, FLOODER, DEFAULTS.origin_rate, burst=int(DEFAULTS.origin_burst))
    relayed.due -= 1  # within the limit by one message: no rounding decides
    honest = [Sender(relay, f"10.0.1.{i}:7000", rate=2.0) for i in range(20)]
    run([flood, relayed, *honest], 60.0)
    assert flood.accepted <= DEFAULTS.origin_burst + DEFAULTS.origin_rate * 60 + 1
    assert flood.sent > 10 * flood.accepted  # the rest was dropped
    assert relayed.accepted == relayed.sent and all(s.accepted == s.sent for s in honest)
    assert relay.points == 0 and flooder.points == 0  # nobody is blamed for an Addr


# -- the connection budget: every object, and a host's burst is the host's --------------


def test_connection_limit_catches_a_flood_under_rotating_addresses():
    control = FloodControl()
    conn = control.open("10.0.0.66:40000", 0.0)
    now, n = 0.0, 0
    with pytest.raises(FloodCut) as cut:
        while now < 30:
            for _ in range(20):  # 2,000 a second, each from a new Addr
                n += 1
                deliver(conn, f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}:7000", now)
            now += TICK
    # Its start of 100 and its reserve of 1,000 at once, then 500 a second, then the penalty
    # credit: ~0.8 s.
    assert 0.6 < now < 1.0
    assert cut.value.entry.addr is None and cut.value.entry.host == "10.0.0.66"
    assert "over the connection limit" in str(cut.value)


def test_payloads_without_a_body_count_and_their_flood_is_cut():
    """30 million ``{}`` from 4 connections were not counted at all (100% CPU)."""
    control = FloodControl()
    conn = control.open("10.0.0.66:40000", 0.0)
    counted = 0
    with pytest.raises(FloodCut):
        while counted < 1_000_000:  # all at once, as fast as they decode
            conn.count(0.0)
            counted += 1
    # Its start and reserve (1,100), then 100 dropped and penalised; the next is the cut.
    assert counted == FIRST + DEFAULTS.penalty_limit


def test_reconnecting_does_not_renew_the_burst():
    """A fresh connection every 4,900 messages pushed 20,000 a second through the old
    per-connection burst.  Now a new connection's start and reserve are paid from its host's
    spare (5,000, then 50 a second), so reconnecting gains a token a time once that is spent."""
    control = FloodControl()
    accepted, now, reconnections = 0, 0.0, 0
    while now < 10.0:
        conn = control.open(f"10.0.0.66:{40000 + reconnections}", now)
        reconnections += 1
        for _ in range(4900):  # in one write, then it hangs up and comes back at once
            if not conn.count(now):
                break
            accepted += 1
        assert conn.points <= 1  # the start its host could not pay is excused
        now += 0.005  # 200 reconnections a second
    most = DEFAULTS.conn_burst + 50 * 10 + reconnections * MIN_START
    assert accepted <= most + 1  # 7,500 in 10 s: 750 a second, not 20,000 (or 196,000)
    assert accepted >= DEFAULTS.conn_burst


def test_an_honest_connection_keeps_its_own_rate_while_a_neighbour_drains_the_host():
    """On a shared IP (loopback) a flooder reconnecting spends the host's spare; bob's
    connection, opened before, has a budget nobody else can spend; a peer that connects in
    the middle of it still has its start for a backlog replay."""
    control = FloodControl()
    bob = control.open("127.0.0.1:40000", 0.0)
    real = Sender(bob, BOB, rate=2.0)
    now = 0.0
    for i in range(200):
        flooder = control.open(f"127.0.0.1:{41000 + i}", now)
        with pytest.raises(FloodCut):
            while True:
                deliver(flooder, f"10.2.{i}.1:7000", now)
        real.step(now)
        now += TICK
    assert control.hosts["127.0.0.1"].level(now) < 2  # the host's spare is spent
    paste = [deliver(bob, BOB, now) for _ in range(200)]  # bob pastes: his own 5,000
    assert real.accepted == real.sent and all(paste) and bob.points == 0
    # A peer that links to us in the middle of it: its hello is heard at once; its replay
    # finds the spare spent (dropped, but excused by its reserve: no penalty); its next
    # lines are heard.
    late = control.open("127.0.0.1:42000", now)
    assert late.count(now)
    assert sum(late.count(now) for _ in range(50)) < 50
    assert all(deliver(late, HONEST, now + 0.2 + i) for i in range(20))
    assert late.points == 0


def test_a_relay_never_sends_a_link_more_than_a_new_connection_accepts():
    """A relay forwards the sum of its connections: three flooders at 400 a second each
    (none over its own limit) made it send 1,200 a second, and the next peer cut it off."""
    relay, receiver = FloodControl(), FloodControl()
    link = relay.link_budget(0.0)
    conn = receiver.open("10.0.0.9:40000", 0.0)  # the relay's link, just connected
    now, sent, held = 0.0, 0, 0
    while now < 30.0:
        for _ in range(12):  # 1,200 a second to forward
            if link.take(now, False):
                sent += 1
                assert conn.count(now)  # never over the receiver's budget
            else:
                held += 1  # dropped for that link, as a full queue's (§5.3)
        now += TICK
    assert conn.points == 0 and sent > 400 * 30 and held > 0  # 80%: the rest kept for light
    # Without it the relay is cut within seconds.
    unpaced = receiver.open("10.0.0.8:40000", 0.0)
    with pytest.raises(FloodCut):
        for n in range(1200 * 30):
            unpaced.count(n / 1200)


def test_a_flood_through_us_cannot_crowd_a_light_speaker_off_a_link():
    """A share of each link is kept for light messages: ours, and those of connections that
    bring no more than a person types.  Bob (2 a second) keeps getting through while a
    flood on three other connections saturates the link; so do our own lines."""
    control = FloodControl()
    link = control.link_budget(0.0)
    bob = control.open("10.0.0.7:40000", 0.0)
    flooders = [control.open(f"10.0.0.{60 + i}:40000", 0.0) for i in range(3)]
    now, bobs, flood = 0.0, [], []
    while now < 30.0:
        for conn in flooders:
            for _ in range(4):  # 400 a second each
                flood.append(link.take(now, conn.light(now)))
        if round(now / TICK) % 50 == 0:  # bob: 2 a second
            bobs.append(link.take(now, bob.light(now)))
            bobs.append(link.take(now, True))  # and one of ours
        now += TICK
    assert all(bobs) and len(bobs) == 120
    assert 0.3 < sum(flood) / len(flood) < 0.5  # the flood gets the rest: 400 of 1,200 a second


# -- penalties and the blacklist: hosts, never an Addr --------------------------------------


def test_invalid_messages_cost_credit_that_refills():
    control = FloodControl()
    conn = control.open("10.0.0.66:1", 0.0)
    for _ in range(100):
        conn.penalise(0.0)
    with pytest.raises(FloodCut):
        conn.penalise(0.0)
    patient = control.open("10.0.0.67:1", 0.0)
    for t in range(200):  # one a second is forgiven as fast as it comes
        patient.penalise(float(t))
    assert control.blacklist.host("10.0.0.67", 200.0) is None


def test_1700_messages_claiming_bobs_addr_in_one_write_blacklist_nobody():
    """The flood cut the attacker, and blacklisted bob for 600 s (our link to him closed)."""
    control = FloodControl()
    attacker = control.open("10.0.0.66:40000", 0.0)
    accepted = 0
    with pytest.raises(FloodCut) as cut:  # past its budget (the host's 1,000 at once)
        for _ in range(1700):
            accepted += attacker.count(0.0, BOB) and attacker.admit(BOB, 0.0)
    assert accepted == DEFAULTS.origin_burst  # contained: the rest dropped
    assert cut.value.entry.host == "10.0.0.66" and cut.value.entry.addr is None
    assert control.blocked(BOB, 1.0) is None
    assert control.blocked(FLOODER, 1.0) is not None  # the attacker's own IP
    # The notice says what the flood claimed to be, and that a claim proves nothing.
    assert f"claiming to be from {BOB}: anyone can write that" in str(cut.value)
    assert control.open("10.0.0.7:40001", 1.0) is not None


def cut_flooder(control: FloodControl, remote: str, now: float = 0.0) -> FloodCut:
    conn = control.open(remote, now)
    assert conn is not None
    with pytest.raises(FloodCut) as cut:
        for _ in range(100_000):
            conn.count(now)
    return cut.value


def test_a_blacklisted_host_is_refused_and_not_dialled_until_expiry():
    control = FloodControl()
    assert not cut_flooder(control, "10.0.0.66:40000", now=100.0).refused
    assert control.open("10.0.0.66:40001", 101.0) is None
    assert control.open("10.0.0.5:40001", 101.0) is not None
    assert control.blocked(FLOODER, 699.0) is not None  # any port at that IP
    assert control.blocked("10.0.0.66:1", 699.0) is not None
    assert control.blocked(HONEST, 699.0) is None
    assert control.open("10.0.0.66:40002", 701.0) is not None  # 600 s later: forgiven
    assert control.blocked(FLOODER, 701.0) is None
    assert control.blacklist.entries(701.0) == []
    assert control.stats.refused == 1


def test_a_shared_host_is_never_refused_nor_its_addresses_blocked():
    control = FloodControl()
    cut = cut_flooder(control, "127.0.0.1:40000")
    assert not cut.refused and "still accepted" in str(cut)
    assert control.open("127.0.0.1:40001", 1.0) is not None  # loopback: many peers share it
    assert control.blocked("127.0.0.1:7000", 1.0) is None
    assert cut_flooder(control, "127.0.0.1:40002", now=2.0).refused  # back: logged quietly
    # Our own IP counts as shared too (peers on this machine reach us through it).
    cut_flooder(control, "10.0.0.9:40000", now=2.0)
    assert control.open("10.0.0.9:40001", 3.0, here="10.0.0.9:55555") is not None
    assert control.open("10.0.0.9:40001", 3.0, here="10.0.0.1:55555") is None
    control.here = "10.0.0.9:55555"
    assert control.blocked("10.0.0.9:7000", 3.0) is None
    assert control.stats.refused == 1


def test_unblock_lifts_by_host_or_an_address_at_it():
    control = FloodControl()
    cut_flooder(control, "10.0.0.66:40000")
    cut_flooder(control, "10.0.0.77:40000", now=1.0)
    assert len(control.blacklist.entries(2.0)) == 2
    assert [e.host for e in control.unblock("10.0.0.77")] == ["10.0.0.77"]
    assert control.blocked("10.0.0.77:7000", 2.0) is None
    assert control.blocked(FLOODER, 2.0) is not None
    assert len(control.unblock(" 10.0.0.66:7000 ")) == 1
    assert control.blocked(FLOODER, 2.0) is None
    assert control.open("10.0.0.66:40001", 2.0) is not None
    assert control.unblock("10.9.9.9:1") == []
    assert len(control.blacklist) == 0


def test_describe_names_the_host_and_the_time_left():
    control = FloodControl()
    cut = cut_flooder(control, "10.0.0.66:40000", now=10.0)
    text = cut.entry.describe(70.0)
    assert text.startswith("host 10.0.0.66: 101 messages over the connection limit; ")
    assert text.endswith("540s left")


# -- bounded state -----------------------------------------------------------------------


def test_a_connections_origins_are_bounded_and_a_drained_one_is_kept():
    control = FloodControl()
    conn = control.open("10.0.0.5:1", 0.0)
    assert sum(conn.admit(FLOODER, 0.0) for _ in range(600)) == 500  # drained
    for n in range(5000):  # rotating Addrs, to push the drained origin out
        assert conn.admit(f"10.3.{n // 250}.{n % 250}:7000", 0.0)
    assert len(conn.origins) <= MAX_ORIGINS
    assert not conn.admit(FLOODER, 0.0)  # still drained: the full ones were forgotten


def test_origins_are_bounded_in_bytes_whatever_addr_a_peer_writes():
    """Addr is any string: 5,000 new messages, each naming a new 100 KB Addr, held 500 MB."""
    control = FloodControl()
    conn = control.open("10.0.0.66:1", 0.0)
    tail = "x" * 100_000
    for n in range(1000):
        assert conn.admit(f"10.0.{n // 250}.{n % 250}:{tail}", 0.0)
    assert sum(len(addr) for addr in conn.origins) <= 1000 * MAX_ORIGIN_CHARS


def test_host_spares_are_bounded_and_kept_per_ipv6_prefix():
    control = FloodControl()
    for n in range(3 * MAX_HOSTS):
        conn = control.open(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}:1", 0.0)
        conn.bucket.tokens = 0  # each one drains its host's spare a little
        conn.count(0.0)
    assert len(control.hosts) <= MAX_HOSTS
    a = control.open("[2001:db8::1]:1", 0.0)
    b = control.open("[2001:db8::2]:1", 0.0)  # the same /64: the same spare
    c = control.open("[2001:db8:0:1::1]:1", 0.0)
    assert a.spare is b.spare and a.spare is not c.spare


# -- configuration -----------------------------------------------------------------------


def parse(*argv: str) -> FloodConfig | None:
    parser = argparse.ArgumentParser()
    add_flood_flags(parser)
    return flood_from_args(parser.parse_args(argv))


def test_flags_set_the_limits_and_no_flood_control_turns_it_off():
    assert parse() == DEFAULTS
    assert parse("-flood-rate", "5", "-flood-burst", "50") == FloodConfig(
        origin_rate=5, origin_burst=50
    )
    assert parse("-flood-conn-rate", "9", "-flood-penalties", "3", "-flood-blacklist", "60") == (
        FloodConfig(conn_rate=9, penalty_limit=3, blacklist_for=60)
    )
    assert parse("-no-flood-control") is None
    for bad in ("0", "-1", "nan", "inf"):
        with pytest.raises(ValueError, match="-flood-rate must be a positive number"):
            parse("-flood-rate", bad)


def test_the_cli_rejects_a_bad_limit_with_a_usage_error(capsys):
    assert main(["-flood-burst", "0", "-port", "0"]) == 2
    assert "-flood-burst must be a positive number" in capsys.readouterr().err
    assert main(["-flood-conn-burst", "0.5", "-port", "0"]) == 2
    assert "-flood-conn-burst must be at least 1" in capsys.readouterr().err


def test_config_refuses_nonsense():
    with pytest.raises(ValueError):
        FloodConfig(origin_rate=-1)
    with pytest.raises(ValueError):
        FloodConfig(penalty_limit=0)
    for burst in ("origin_burst", "conn_burst"):  # under 1, no message is ever accepted
        with pytest.raises(ValueError, match=f"{burst} must be at least 1"):
            FloodConfig(**{burst: 0.5})
