"""Connection slots (PROTOCOL.md §5.4): who gives way when the table is full.  Pure state,
the clock passed in."""

from __future__ import annotations

import random
from dataclasses import dataclass

from whisper.connmgr import network, victim
from whisper.peers import PeerTable

GRACE, ACTIVE = 5.0, 60.0
closes: list[str] = []


def closer(remote: str):
    return lambda why: closes.append(remote)


def incoming(max_incoming: int = 4, max_per_host: int = 16) -> PeerTable:
    return PeerTable(
        "1.0.0.1:5",
        max_incoming=max_incoming,
        max_per_host=max_per_host,
        grace=GRACE,
        active_for=ACTIVE,
    )


def outgoing(max_outgoing: int = 3) -> PeerTable:
    return PeerTable(
        "9.9.9.9:5",
        max_outgoing=max_outgoing,
        grace=GRACE,
        active_for=ACTIVE,
        rng=random.Random(1),
    )


def fill(t: PeerTable, remotes: list[str], now: float = 0.0) -> None:
    for remote in remotes:
        assert t.admit(remote, now, closer(remote)), remote


def test_networks_are_public_ipv4_slash_24_and_ipv6_slash_64():
    assert network("1.1.2.3") == network("1.1.2.250") == "1.1.2.0/24"
    assert network("1.1.3.3") != network("1.1.2.3")
    assert network("2a00:1:2:3:aaaa::1") == network("2a00:1:2:3::ffff") == "2a00:1:2:3::/64"
    assert network("2a00:1:2:4::1") != network("2a00:1:2:3::1")
    assert network("::ffff:1.1.2.3") == "1.1.2.0/24"  # IPv4-mapped is IPv4
    assert network("192.168.1.7") == "192.168.1.7"  # a LAN's: one machine each
    assert network("fd00::7") == "fd00::7"
    assert network("not-an-ip") == "not-an-ip"


@dataclass
class S:
    addr: str
    opened: float
    produced: float | None = None
    pinned: bool = False

    @property
    def net(self) -> str:
        return network(self.addr.rpartition(":")[0])


def pick(slots: list[S], now: float) -> S | None:
    return victim(slots, now, grace=GRACE, active_for=ACTIVE)


def test_who_may_give_way():
    fresh = S("1.0.1.1:1", opened=98)  # within its grace period
    busy = S("1.0.2.1:1", opened=0, produced=50)  # produced 50 s ago
    pinned = S("1.0.3.1:1", opened=0, pinned=True)
    assert pick([fresh, busy, pinned], now=100) is None
    assert pick([fresh, busy, pinned], now=103) is fresh  # grace over
    assert pick([busy, pinned], now=110) is busy  # quiet for 60 s
    assert pick([pinned], now=10_000) is None


def test_never_produced_goes_first_then_the_most_crowded_network_then_quiet_longest():
    spoke_long_ago = S("1.0.1.1:1", opened=0, produced=1)
    old_loner = S("1.0.2.1:1", opened=2)
    crowd = [S(f"1.0.3.{i}:1", opened=10 + i) for i in range(3)]
    slots = [spoke_long_ago, old_loner, *crowd]
    assert pick(slots, now=100) is crowd[0]  # oldest of the most crowded network
    assert pick([spoke_long_ago, old_loner, crowd[2]], now=100) is old_loner  # oldest
    later = S("1.0.4.1:1", opened=0, produced=20)
    assert pick([later, spoke_long_ago], now=100) is spoke_long_ago  # quiet longest


def test_a_full_incoming_table_makes_room_once_a_connection_has_had_its_grace():
    t = incoming(max_incoming=4)
    fill(t, [f"1.0.{i}.9:1000" for i in range(4)])
    assert (
        "4 incoming connections already, none may give way"
        in t.admit("1.9.9.9:1", 1.0, closer("x")).refused
    )
    admission = t.admit("1.9.9.9:1", GRACE, closer("newcomer"))
    assert admission and admission.replaces is not None
    assert admission.replaces.addr == "1.0.0.9:1000"  # never delivered, the oldest
    assert "1.0.0.9:1000" not in t.incoming and "1.9.9.9:1" in t.incoming
    assert len(t.incoming) == 4
    admission.replaces.close("gave way")  # the handle is the evicted connection's own
    assert closes[-1] == "1.0.0.9:1000"


def test_a_connection_that_delivered_recently_is_never_evicted():
    t = incoming(max_incoming=4)
    fill(t, [f"1.0.{i}.9:1000" for i in range(4)])
    for i in range(4):
        t.delivered(f"1.0.{i}.9:1000", None, 10.0 + i)
    assert not t.admit("1.9.9.9:1", 69.0, closer("x"))  # all within 60 s
    admission = t.admit("1.9.9.9:1", 70.0, closer("x"))
    assert admission.replaces is not None and admission.replaces.addr == "1.0.0.9:1000"


def test_the_per_network_cap_evicts_within_that_network():
    t = incoming(max_incoming=8, max_per_host=2)
    fill(t, ["1.0.9.1:1"])  # another network's, older and as idle
    fill(t, ["1.0.0.2:1", "1.0.0.3:1"], now=1.0)
    admission = t.admit("1.0.0.4:1", 10.0, closer("x"))
    assert admission.replaces is not None and admission.replaces.addr == "1.0.0.2:1"
    assert "1.0.9.1:1" in t.incoming
    t.delivered("1.0.0.4:1", None, 11.0)
    assert t.admit("1.0.0.5:1", 12.0, closer("x")).replaces.addr == "1.0.0.3:1"
    refused = t.admit("1.0.0.6:1", 13.0, closer("x")).refused  # one busy, one new
    assert refused == "2 incoming connections from 1.0.0.0/24 already, none may give way"
    assert t.admit("1.0.1.6:1", 13.0, closer("x"))  # the next network is not affected


def test_loopback_and_our_own_ip_share_only_the_total():
    t = incoming(max_incoming=40, max_per_host=2)
    fill(t, [f"127.0.0.1:{port}" for port in range(20)] + [f"1.0.0.1:{p}" for p in range(20)])
    assert "40 incoming connections already" in t.admit("127.0.0.1:99", 1.0, closer("x")).refused
    assert t.admit("127.0.0.1:99", GRACE, closer("x")).replaces.addr == "127.0.0.1:0"


def test_slots_held_by_idle_connections_from_eight_networks_do_not_lock_anyone_out():
    """The attack of issue 8 at full size: 8 networks x 16 idle connections fill all 128
    slots and keep opening more, 10 a second; honest newcomers still get in, and stay
    although each says something only 20 s after joining, and then every 30 s."""
    t = incoming(max_incoming=128, max_per_host=16)
    fill(t, [f"1.{n}.0.{i}:1" for n in range(8) for i in range(16)])
    joined: dict[str, int] = {}  # honest remote -> tick it joined
    evicted = 0
    for tick in range(6000):  # 600 s, a tick is 0.1 s
        now = 10.0 + tick / 10
        admission = t.admit(f"1.{tick % 8}.0.{tick % 16}:{tick + 2}", now, closer("attacker"))
        evicted += admission.replaces is not None
        if tick % 600 == 0 and len(joined) < 3:
            remote = f"5.5.{len(joined)}.1:1"
            assert t.admit(remote, now, closer("honest")).replaces.addr.startswith("1.")
            joined[remote] = tick
        for remote, since in joined.items():
            assert remote in t.incoming, (remote, now)
            if tick > since and (tick - since) % 300 == 200:
                t.delivered(remote, None, now)
    assert len(t.incoming) == 128 and evicted > 5000


def test_a_full_outgoing_table_lets_a_speaker_replace_a_link_that_never_produced():
    t = outgoing(max_outgoing=3)
    for i in range(3):  # announced (discovery): never spoke
        assert t.should_dial(f"1.0.{i}.1:5", float(i))
    assert not t.should_dial("1.0.9.1:5", 10.0)  # announced too: never replaces
    assert not t.should_dial("1.0.9.1:5", 4.0, spoke=True)  # all in their grace period
    assert t.should_dial("1.0.9.1:5", 5.0, spoke=True).replaces.addr == "1.0.0.1:5"
    assert set(t.outgoing) == {"1.0.1.1:5", "1.0.2.1:5", "1.0.9.1:5"}
    assert "1.0.0.1:5" not in t.given_up()  # dialled again should it speak
    assert t.should_dial("1.0.0.1:5", 10.0, spoke=True).replaces.addr == "1.0.1.1:5"


def test_links_whose_addr_spoke_recently_are_kept():
    t = outgoing(max_outgoing=3)
    for i in range(3):
        assert t.should_dial(f"1.0.{i}.1:5", 0.0, spoke=True)
    t.delivered("127.0.0.1:999", "1.0.0.1:5", 30.0)  # one of them spoke again, via anyone
    refused = t.should_dial("1.0.9.1:5", 59.0, spoke=True).refused
    assert refused == "3 outgoing links already, none may give way"
    assert t.should_dial("1.0.9.1:5", 60.0, spoke=True).replaces.addr == "1.0.1.1:5"
    assert t.should_dial("1.0.8.1:5", 61.0, spoke=True).replaces.addr == "1.0.2.1:5"
    assert not t.should_dial("1.0.7.1:5", 61.0, spoke=True)  # 10.0.0.1 spoke at 30


def test_links_the_user_asked_for_are_never_replaced_and_the_user_may_replace():
    t = outgoing(max_outgoing=2)
    assert t.should_dial("1.0.0.1:5", 0.0, by_user=True)
    assert t.should_dial("1.0.1.1:5", 0.0)
    assert not t.should_dial("1.0.1.1:5", 1.0, by_user=True)  # linked already: now pinned
    assert not t.should_dial("1.0.9.1:5", 1000.0, spoke=True)
    t2 = outgoing(max_outgoing=1)
    assert t2.should_dial("1.0.1.1:5", 0.0)
    assert t2.should_dial("1.0.9.1:5", 10.0, by_user=True).replaces.addr == "1.0.1.1:5"
    assert t2.outgoing["1.0.9.1:5"].pinned
