"""Flood control policy (flood.py), pure and synchronous: time is a number we pass in."""

from __future__ import annotations

import argparse

import pytest

from whisper.cli import add_flood_flags, flood_from_args, main
from whisper.flood import (
    MAX_ORIGIN_CHARS,
    FloodConfig,
    FloodControl,
    FloodCut,
    OwnLimit,
)

FLOODER = "10.0.0.66:7000"
HONEST = "10.0.0.5:7000"
DEFAULTS = FloodConfig()
TICK = 0.01  # simulated time step, seconds


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
            self.accepted += self.conn.admit(self.addr, now)


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
    assert all(paste.admit(HONEST, 0.0) for _ in range(200))
    # A newcomer's backlog replay: 50 messages, some from the same busy origin.
    backlog = control.open("10.0.0.7:40002", 0.5)
    origins = [HONEST] * 20 + [f"10.0.0.{i}:7000" for i in range(10, 40)]
    assert all(backlog.admit(addr, 0.5) for addr in origins)
    # Ten seconds later the same user pastes 200 lines again.
    assert all(paste.admit(HONEST, 10.0) for _ in range(200))
    assert control.stats.penalties == 0 and control.stats.over_origin == 0


def test_our_own_paste_of_200_lines_passes_and_more_than_a_burst_is_refused():
    control = FloodControl()
    for _ in range(int(DEFAULTS.origin_burst)):
        control.own(HONEST, 0.0)
    with pytest.raises(OwnLimit, match=r"wait 0\.1s"):
        control.own(HONEST, 0.0)
    control.own(HONEST, 1.0)  # 20 a second come back


def test_a_relay_carrying_a_busy_network_is_never_limited():
    control = FloodControl()
    relay = control.open("10.0.0.9:40000", 0.0)
    senders = [Sender(relay, f"10.1.{i // 250}.{i % 250}:7000", rate=2.0) for i in range(150)]
    senders.append(Sender(relay, HONEST, rate=DEFAULTS.origin_rate, burst=200))
    run(senders, 60.0)
    assert all(s.accepted == s.sent for s in senders)
    assert sum(s.sent for s in senders) > 60 * 300
    assert control.stats.penalties == 0


# -- limits ------------------------------------------------------------------------------


def test_origin_limit_drops_the_excess_for_every_connection_and_refills():
    control = FloodControl()
    a, b = control.open("10.0.0.1:1", 0.0), control.open("10.0.0.2:1", 0.0)
    assert sum(a.admit(FLOODER, 0.0) for _ in range(300)) == 300
    assert sum(b.admit(FLOODER, 0.0) for _ in range(300)) == 200  # the bucket is shared
    assert not a.admit(FLOODER, 0.0)
    assert sum(a.admit(FLOODER, 1.0) for _ in range(100)) == 20
    assert a.admit(HONEST, 1.0)  # other origins are unaffected
    assert control.stats.over_origin == 100 + 1 + 80
    assert control.stats.excused == control.stats.over_origin  # within relay allowances
    assert control.stats.penalties == 0


def test_a_flooder_at_20x_is_cut_within_seconds_and_the_relays_never_blamed():
    """The flood enters on one connection; a relay forwards the same origin at the full
    origin limit (the most a conforming relay can) along with honest origins."""
    control = FloodControl()
    flooder = control.open("10.0.0.66:40000", 0.0)
    relay = control.open("10.0.0.9:40000", 0.0)
    flood = Sender(flooder, FLOODER, rate=20 * DEFAULTS.origin_rate)
    relayed = Sender(relay, FLOODER, DEFAULTS.origin_rate, burst=int(DEFAULTS.origin_burst))
    honest = [Sender(relay, f"10.0.1.{i}:7000", rate=2.0) for i in range(20)]
    with pytest.raises(FloodCut) as cut:
        run([flood, relayed, *honest], 30.0)
    cut_at = flood.sent / flood.rate
    assert 2.0 < cut_at < 6.0  # past the burst and the allowance, then the penalty credit
    assert cut.value.addr == FLOODER and cut.value.entry.host == "10.0.0.66"
    assert "over its limit" in str(cut.value)
    # The relay carries on for a minute at the limit: never blamed, honest all accepted.
    run([relayed, *honest], 60.0, start=cut_at)
    assert relay.points == 0
    assert all(s.accepted == s.sent for s in honest)
    assert control.stats.cut == 1


def test_a_flood_through_a_relay_that_does_not_limit_is_blamed_on_that_relay():
    """A peer without flood control forwarding a flood cannot be told from its source."""
    control = FloodControl()
    go_relay = control.open("10.0.0.8:40000", 0.0)
    with pytest.raises(FloodCut) as cut:
        run([Sender(go_relay, FLOODER, rate=400)], 30.0)
    assert cut.value.addr == FLOODER and cut.value.entry.host == "10.0.0.8"


def test_connection_limit_catches_a_flood_under_rotating_addresses():
    control = FloodControl()
    conn = control.open("10.0.0.66:40000", 0.0)
    now, n = 0.0, 0
    with pytest.raises(FloodCut) as cut:
        while now < 30:
            for _ in range(20):  # 2,000 a second, each from a new Addr
                n += 1
                conn.admit(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}:7000", now)
            now += TICK
    assert 3.0 < now < 5.0  # 5,000 at once, then 500 a second: gone after ~3.4 s
    assert cut.value.addr is None  # no origin to blame: the host is blacklisted
    assert cut.value.entry.host == "10.0.0.66"
    assert "over the connection limit" in str(cut.value)


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


def test_blame_spread_over_many_origins_blacklists_only_the_host():
    control = FloodControl(FloodConfig(origin_burst=1, origin_rate=0.1, relay_allowance=0))
    conn = control.open("10.0.0.66:1", 0.0)
    origins = [f"10.0.2.{i}:7000" for i in range(3)]
    with pytest.raises(FloodCut) as cut:
        for n in range(1000):
            conn.admit(origins[n % 3], 0.0)
    assert cut.value.addr is None and cut.value.entry.host == "10.0.0.66"


# -- the blacklist -----------------------------------------------------------------------


def cut_flooder(
    control: FloodControl, remote: str, now: float = 0.0, addr: str = FLOODER
) -> FloodCut:
    conn = control.open(remote, now)
    with pytest.raises(FloodCut) as cut:
        for _ in range(100_000):
            conn.admit(addr, now)
    assert not cut.value.refused
    return cut.value


def test_a_blacklisted_host_is_refused_and_its_addr_not_dialled_until_expiry():
    control = FloodControl()
    cut_flooder(control, "10.0.0.66:40000", now=100.0)
    assert control.open("10.0.0.66:40001", 101.0) is None
    assert control.open("10.0.0.5:40001", 101.0) is not None
    assert control.blocked(FLOODER, 699.0) is not None
    assert control.blocked(HONEST, 699.0) is None
    assert control.open("10.0.0.66:40002", 701.0) is not None  # 600 s later: forgiven
    assert control.blocked(FLOODER, 701.0) is None
    assert control.blacklist.entries(701.0) == []
    assert control.stats.refused == 1


def test_on_a_shared_host_the_flooder_back_is_cut_at_once_and_a_relay_is_not():
    control = FloodControl()
    cut_flooder(control, "127.0.0.1:40000")
    # Loopback: many peers share the IP, so a new connection from it is not refused ...
    back = control.open("127.0.0.1:40001", 1.0)
    relay = control.open("127.0.0.1:40002", 1.0)
    assert back is not None and relay is not None
    # ... but has no relay allowance for the blacklisted Addr: flooding again is cut after
    # the origin's few refilled tokens and the penalty credit, not after the allowance.
    sent = 0
    with pytest.raises(FloodCut) as again:
        while sent < 10_000:
            sent += 1
            back.admit(FLOODER, 1.0)
    assert sent <= DEFAULTS.origin_rate + DEFAULTS.penalty_limit + 2
    assert again.value.refused  # it was blacklisted already: the node logs it quietly
    # A relay's new connection forwarding the origin within its limit, and others, is fine.
    run([Sender(relay, FLOODER, rate=DEFAULTS.origin_rate), Sender(relay, HONEST, 2)], 60.0, 1.0)
    assert relay.points <= 2  # the origin's bucket was empty when it started: far from a cut
    assert control.stats.refused == 0
    # Our own IP counts as shared too (peers on this machine reach us through it).
    cut_flooder(control, "10.0.0.9:40000", now=2.0, addr="10.0.0.9:7000")
    assert control.open("10.0.0.9:40001", 3.0, here="10.0.0.9:55555") is not None
    assert control.open("10.0.0.9:40001", 3.0, here="10.0.0.1:55555") is None
    assert control.stats.refused == 1


def test_unblock_lifts_by_addr_or_by_host():
    control = FloodControl()
    cut_flooder(control, "10.0.0.66:40000")
    cut_flooder(control, "10.0.0.77:40000", now=1.0, addr="10.0.0.77:7000")
    assert len(control.blacklist.entries(2.0)) == 2
    assert [e.host for e in control.unblock("10.0.0.77")] == ["10.0.0.77"]
    assert control.blocked("10.0.0.77:7000", 2.0) is None
    assert control.blocked(FLOODER, 2.0) is not None
    assert len(control.unblock(" 10.0.0.66:7000 ")) == 1
    assert control.blocked(FLOODER, 2.0) is None
    assert control.open("10.0.0.66:40001", 2.0) is not None
    assert control.unblock("10.9.9.9:1") == []
    assert len(control.blacklist) == 0


def test_describe_names_the_flooder_its_host_and_the_time_left():
    control = FloodControl()
    cut = cut_flooder(control, "10.0.0.66:40000", now=10.0)
    text = cut.entry.describe(70.0)
    assert text.startswith(f"{FLOODER} (from 10.0.0.66): ")
    assert text.endswith("540s left")


# -- bounded state -----------------------------------------------------------------------


def test_the_origin_table_is_bounded():
    control = FloodControl(FloodConfig(max_origins=100))
    conn = control.open("10.0.0.5:1", 0.0)
    for n in range(1000):
        assert conn.admit(f"10.3.{n // 250}.{n % 250}:7000", n * 0.001)
    assert len(control.origins) <= 100
    # A forgotten origin only ever had its bucket refilled: it is a new one again.
    assert conn.admit("10.3.0.0:7000", 2.0)


def test_origins_are_bounded_in_bytes_whatever_addr_a_peer_writes():
    """Addr is any string: 5,000 new messages, each naming a new 100 KB Addr, held 500 MB."""
    control = FloodControl()
    conn = control.open("10.0.0.66:1", 0.0)
    tail = "x" * 100_000
    for n in range(1000):
        assert conn.admit(f"10.0.{n // 250}.{n % 250}:{tail}", 0.0)
    assert sum(len(addr) for addr in control.origins) <= 1000 * MAX_ORIGIN_CHARS
    cut = cut_flooder(control, "10.0.0.77:1", addr=FLOODER + tail)  # the one origin, flooded
    assert len(str(cut)) < 3 * MAX_ORIGIN_CHARS  # the notice and log line it makes
    assert cut.addr is not None and cut.addr.startswith(FLOODER)


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
