"""UDP discovery, the pure part: datagram parsing, scope, dial and announce policy.

Synchronous tests, hypothesis for arbitrary bytes and arbitrary interface tables.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper.discovery_policy import (
    LIMITED_BROADCAST,
    MAX_DATAGRAM,
    Announcement,
    AnnounceSchedule,
    Decision,
    DialPolicy,
    Endpoint,
    InterfaceAddress,
    Scope,
    UnsafeDestination,
    check_destination,
    choose_scope,
    format_datagram,
    judge,
    on_behalf,
    parse_datagram,
)

TIMEOUT = 10
LO = InterfaceAddress("lo", IPv4Address("127.0.0.1"), IPv4Address("255.0.0.0"), None)
ETH = InterfaceAddress(
    "eth0", IPv4Address("10.77.0.5"), IPv4Address("255.255.255.0"), IPv4Address("10.77.0.255"), True
)
LAN = choose_scope("10.77.0.5", "10.77.0.5", [LO, ETH])
LOOP = choose_scope("127.0.0.1", "127.0.0.1", [LO, ETH])


# -- the datagram format -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"10.0.0.5:55555", Endpoint(IPv4Address("10.0.0.5"), 55555)),
        (b"127.0.0.1:1", Endpoint(IPv4Address("127.0.0.1"), 1)),
        (b" 192.168.1.20:65535\r\n", Endpoint(IPv4Address("192.168.1.20"), 65535)),
    ],
)
def test_parse_valid(data, expected):
    assert parse_datagram(data) == expected


GARBAGE = [
    b"",
    b"127.0.0.1",
    b"127.0.0.1:",
    b":80",
    b"127.0.0.1:0",
    b"127.0.0.1:65536",
    b"127.0.0.1:99999",
    b"127.0.0.1:080",
    b"010.0.0.1:80",
    b"256.0.0.1:80",
    b"1.2.3:80",
    b"1.2.3.4.5:80",
    b"localhost:80",
    b"[::1]:80",
    b"::1:80",
    b"0.0.0.0:80",
    b"224.0.0.1:80",
    b"255.255.255.255:80",
    b"1.2.3.4:80\x00",
    b"1.2.3.4:80 1.2.3.5:80",
    b"1.2.3.4: 80",
    b"1.2.3.4:+80",
    b"\xd9\xa1.2.3.4:80",
    b"\xff\xfe\xfd",
    b'{"Addr":"1.2.3.4:80"}',
    b" " * MAX_DATAGRAM + b"1.2.3.4:80",
]


@pytest.mark.parametrize("data", GARBAGE)
def test_parse_garbage(data):
    assert parse_datagram(data) is None


@given(st.binary(max_size=100))
def test_parse_any_bytes_never_raises_and_round_trips(data):
    endpoint = parse_datagram(data)
    if endpoint is not None:
        assert format_datagram(endpoint) == data.strip(b" \t\r\n")
        assert 1 <= endpoint.port <= 65535


@given(st.ip_addresses(v=4), st.integers(1, 65535))
def test_format_then_parse(ip, port):
    endpoint = Endpoint(ip, port)
    special = ip.is_unspecified or ip.is_multicast or ip == LIMITED_BROADCAST
    assert parse_datagram(format_datagram(endpoint)) == (None if special else endpoint)


# -- scope: where we may speak -------------------------------------------------------------


def test_scope_of_a_lan_address_is_its_directed_broadcast():
    expected = Scope("eth0", ETH.ip, IPv4Network("10.77.0.0/24"), ETH.broadcast)
    assert expected == LAN


def test_unconfigured_broadcast_on_a_broadcast_interface_is_the_networks():
    entry = InterfaceAddress(
        "eth1", IPv4Address("10.77.3.9"), IPv4Address("255.255.254.0"), None, True
    )
    scope = choose_scope("0.0.0.0", "10.77.3.9", [LO, entry])
    assert scope is not None and scope.target == IPv4Address("10.77.3.255")


def test_loopback_announces_nowhere():
    assert LOOP is not None and LOOP.loopback and LOOP.target is None
    with pytest.raises(UnsafeDestination):
        check_destination(LOOP, IPv4Address("127.255.255.255"))


def test_wildcard_bind_uses_the_advertised_address():
    assert choose_scope("0.0.0.0", "10.77.0.5", [LO, ETH]) == LAN
    assert choose_scope("", "127.0.0.1", [LO, ETH]) == LOOP


@pytest.mark.parametrize(
    ("bound", "advertised"),
    [("10.9.9.9", "10.9.9.9"), ("0.0.0.0", "192.0.2.1"), ("::1", "::1"), ("::", "::1"), ("x", "x")],
)
def test_no_scope_when_no_interface_owns_the_address(bound, advertised):
    assert choose_scope(bound, advertised, [LO, ETH]) is None


@pytest.mark.parametrize(
    ("netmask", "broadcast", "flag", "expected"),
    [
        ("255.255.255.0", "10.77.0.255", False, "10.77.0.255"),  # configured
        ("255.255.255.0", None, True, "10.77.0.255"),  # not configured, BROADCAST flag
        ("255.255.255.0", "10.77.0.5", True, "10.77.0.255"),  # listed as our own address
        ("255.255.255.0", "10.77.1.255", True, "10.77.0.255"),  # outside the network
        ("255.255.255.0", "255.255.255.255", True, "10.77.0.255"),
        ("255.255.255.0", None, False, None),  # point-to-point: no broadcast
        ("255.255.255.0", "255.255.255.255", False, None),
        ("255.255.255.0", "10.77.1.255", False, None),
        ("255.255.255.0", "10.77.0.5", False, None),
        ("255.255.255.255", "10.77.0.5", True, None),  # /32
        ("255.255.255.254", "10.77.0.5", True, None),  # /31
        ("0.0.0.0", "255.255.255.255", True, None),  # /0
    ],
)
def test_directed_broadcast_target(netmask, broadcast, flag, expected):
    configured = IPv4Address(broadcast) if broadcast else None
    entry = InterfaceAddress("x0", ETH.ip, IPv4Address(netmask), configured, flag)
    scope = choose_scope(str(ETH.ip), str(ETH.ip), [entry])
    assert scope is not None
    assert scope.target == (IPv4Address(expected) if expected else None)


interfaces = st.builds(
    InterfaceAddress,
    st.sampled_from(["lo", "eth0", "wlan0"]),
    st.ip_addresses(v=4),
    st.integers(0, 32).map(lambda n: IPv4Network(f"0.0.0.0/{n}").netmask),
    st.none() | st.ip_addresses(v=4),
    st.booleans(),
)


@given(st.lists(interfaces, max_size=5), st.data())
def test_any_interface_table_never_yields_an_unsafe_target(table, data):
    bound = data.draw(st.sampled_from(["0.0.0.0", *(str(e.ip) for e in table)]))
    advertised = data.draw(st.sampled_from([str(e.ip) for e in table] or ["127.0.0.1"]))
    scope = choose_scope(bound, advertised, table)
    if scope is None:
        return
    if scope.target is None:
        with pytest.raises(UnsafeDestination):
            check_destination(scope, LIMITED_BROADCAST)
        return
    assert not scope.loopback and scope.target != LIMITED_BROADCAST
    assert scope.target in scope.network and scope.target != scope.ip
    check_destination(scope, scope.target)
    for other in (LIMITED_BROADCAST, scope.ip, IPv4Address("127.255.255.255")):
        with pytest.raises(UnsafeDestination):
            check_destination(scope, other)


# -- what we hear --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "data", "source", "accepted"),
    [
        (LAN, b"10.77.0.9:7000", "10.77.0.9", True),
        (LAN, b"10.77.0.9:7000", "10.77.0.3", True),  # on behalf of another peer
        (LAN, b"10.77.0.9:7000", "10.78.0.3", False),  # source off the segment
        (LAN, b"10.78.0.9:7000", "10.77.0.3", False),  # address off the segment
        (LAN, b"127.0.0.1:7000", "10.77.0.3", False),  # someone's loopback
        (LAN, b"10.77.0.255:7000", "10.77.0.3", False),  # the broadcast address
        (LAN, b"10.77.0.0:7000", "10.77.0.3", False),  # the network address
        (LAN, b"10.77.0.5:7000", "10.77.0.5", False),  # ourselves
        (LAN, b"10.77.0.9:7000", "::1", False),
        (LOOP, b"127.0.0.1:7000", "127.0.0.1", True),
        (LOOP, b"127.0.0.2:7000", "127.0.0.1", True),
        (LOOP, b"10.77.0.9:7000", "10.77.0.9", False),  # a LAN peer cannot dial us back
        (LOOP, b"127.0.0.1:7000", "10.77.0.9", False),
    ],
)
def test_judge(scope, data, source, accepted):
    verdict = judge(data, source, scope, own="10.77.0.5:7000")
    assert (verdict == parse_datagram(data)) if accepted else isinstance(verdict, str)


def test_dial_policy_remembers_and_rate_limits():
    policy = DialPolicy(rate=1.0, burst=3, redial_after=60, remember=100)
    assert [policy.decide(f"10.0.0.{i}:1", 0.0) for i in range(4)] == [Decision.DIAL] * 3 + [
        Decision.RATE_LIMITED
    ]
    assert policy.decide("10.0.0.0:1", 0.5) is Decision.RECENT  # no token spent on it
    assert policy.decide("10.0.0.3:1", 0.5) is Decision.RATE_LIMITED
    assert policy.decide("10.0.0.3:1", 1.0) is Decision.DIAL  # a token refilled
    assert policy.decide("10.0.0.0:1", 59.9) is Decision.RECENT
    assert policy.decide("10.0.0.0:1", 60.0) is Decision.DIAL


def test_dial_policy_memory_is_bounded():
    policy = DialPolicy(rate=1e9, burst=10**6, remember=10)
    for i in range(50):
        assert policy.decide(f"10.0.0.{i}:1", float(i)) is Decision.DIAL
    assert len(policy._recent) == 10
    assert policy.decide("10.0.0.49:1", 50.0) is Decision.RECENT
    assert policy.decide("10.0.0.0:1", 50.0) is Decision.DIAL  # forgotten


@given(st.lists(st.floats(0, 10), max_size=200))
def test_dial_rate_never_exceeds_the_bucket(gaps):
    policy = DialPolicy(rate=2.0, burst=5)
    now, dials = 0.0, 0
    for i, gap in enumerate(gaps):
        now += gap
        dials += policy.decide(f"10.0.{i // 250}.{i % 250}:1", now) is Decision.DIAL
    assert dials <= 5 + 2.0 * now + 1e-9


# -- what we say ---------------------------------------------------------------------------


def test_schedule_round_at_start_then_every_interval():
    schedule = AnnounceSchedule(30.0, jitter=0.1)
    assert schedule.poll(100.0) is Announcement.ROUND
    assert schedule.poll(100.0) is None
    assert 127.0 <= schedule.deadline() <= 133.0
    assert schedule.poll(schedule.deadline() - 0.01) is None
    assert schedule.poll(schedule.deadline()) is Announcement.ROUND


def test_schedule_replies_to_newcomers_at_most_once_per_gap():
    schedule = AnnounceSchedule(30.0, min_gap=1.0)
    schedule.poll(0.0)
    schedule.heard_new()
    schedule.heard_new()
    assert schedule.deadline() == 1.0
    assert schedule.poll(0.5) is None
    assert schedule.poll(1.0) is Announcement.OWN
    assert schedule.poll(1.5) is None and schedule.deadline() > 20
    schedule.heard_new()
    assert schedule.poll(1.9) is None
    assert schedule.poll(2.0) is Announcement.OWN


def test_on_behalf_filters_and_rotates_through_every_peer():
    assert LAN is not None
    known = [f"10.77.0.{i}:7000" for i in range(10, 30)]
    junk = ["10.78.0.1:7000", "127.0.0.1:7000", "10.77.0.5:7000", "[::1]:7000", "h:1"]
    seen: set[Endpoint] = set()
    for round_no in range(3):
        picked = on_behalf(known + junk, LAN, "10.77.0.5:7000", round_no, limit=8)
        assert len(picked) == 8
        seen.update(picked)
    assert {str(e) for e in seen} == set(known)
