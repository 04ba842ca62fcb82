"""The overlay in a simulated network (whisper/routing/sim.py): the issue's targets at small
sizes, with a fixed seed, against today's full flood."""

from __future__ import annotations

import random

import pytest

from whisper.routing.sim import FloodPeer, SimNet
from whisper.routing.simreport import (
    Counters,
    control_rate,
    delivery,
    duplicates,
    last_arrival,
    links,
    recovered_after,
)

PEERS = 80
SEED = 14


def overlay_net(peers: int = PEERS) -> tuple[SimNet, float]:
    net = SimNet(SEED, check_wire=True)
    net.grow(peers, 0.05)
    start = peers * 0.05 + 40
    net.run(start)
    return net, start


def say(net: SimNet, start: float, count: int, rate: float = 2.0) -> list[str]:
    ids = [net.say(start + i / rate) for i in range(count)]
    net.run(start + count / rate + 10)
    return ids


def test_a_stable_overlay_delivers_everything_with_few_duplicates_and_few_links() -> None:
    net, start = overlay_net()
    warmup = say(net, start, 10)
    before = Counters.of(net)
    ids = say(net, net.now, 60)
    assert all(delivery(net, m) == 1.0 for m in warmup + ids)
    assert all(delivery(net, m, within=1.0) == 1.0 for m in ids)
    assert duplicates(net, ids) <= 0.1
    assert (net.copies - before.copies) / sum(len(net.messages[m].got) for m in ids) <= 1.1
    peers, connections = links(net)
    assert max(peers) <= 8 and max(connections) <= 16 and min(peers) >= 1
    traffic = control_rate(net, before)
    assert traffic["membership"] < 60  # shuffles and their walks, not a flood of controls


def test_concurrent_regular_senders_keep_their_trees() -> None:
    # 20 msgs/s from 8 authors: many messages in flight at once.  One tree shared by all
    # authors fell apart here (0.42 duplicates per delivery, the last peer 1.9 s late)
    net, start = overlay_net()
    senders = random.Random(3).sample(net.living(), 8)
    pick = random.Random(4).choice
    rate = 20.0
    for i in range(40):  # each author's first messages settle its tree
        net.say(start + i / rate, pick(senders))
    net.run(start + 40 / rate + 5)
    begin = net.now
    ids = [net.say(begin + i / rate, pick(senders)) for i in range(200)]
    net.run(begin + 200 / rate + 10)
    assert all(delivery(net, m, within=1.0) == 1.0 for m in ids)
    assert duplicates(net, ids) <= 0.1


@pytest.mark.parametrize("fraction", [0.3, 0.5])
def test_after_a_crash_delivery_to_survivors_is_back_to_100_within_30_s(fraction: float) -> None:
    net, start = overlay_net()
    say(net, start, 10)
    crash_at = net.now
    net.crash(crash_at, fraction)
    ids = say(net, crash_at, 60)
    assert len(net.living()) == PEERS - round(fraction * PEERS)
    assert all(delivery(net, m) == 1.0 for m in ids)  # eventually, through grafts
    assert recovered_after(net, ids, crash_at, within=1.0) <= 30.0
    peers, _ = links(net)
    assert min(peers) >= 1 and max(peers) <= 8


def test_the_tree_is_repaired_when_a_parent_crashes() -> None:
    net, start = overlay_net(30)
    ids = say(net, start, 10)
    origin = net.messages[ids[-1]].origin
    children = [p for p, (_, hops) in net.messages[ids[-1]].got.items() if hops == 1]
    net.kill(net.now, children[:1])  # a child of the origin in the tree: its subtree is cut
    after = [net.say(net.now + 0.001, origin), *say(net, net.now + 1, 5)]
    assert all(delivery(net, m) == 1.0 for m in after)


def test_full_flood_joined_by_contacts_delivers_with_n_squared_copies() -> None:
    net = SimNet(SEED, lambda addr, rng: FloodPeer(addr))
    peers = net.grow(20, 0.05)
    for i, addr in enumerate(peers):  # today a peer is dialled back once it has spoken
        net.say(i * 0.05 + 0.02, addr)
        net.say(5 + i * 0.05, addr)  # and once all have joined, by everyone
    net.run(10)
    ids = say(net, 10, 5)
    assert all(delivery(net, m) == 1.0 for m in ids)
    assert duplicates(net, ids) >= 17  # nearly everyone relays to everyone
    assert max(links(net)[0]) == 19
    assert all(last_arrival(net, m)[1] == 1 for m in ids)


def test_a_run_is_deterministic_given_its_seed() -> None:
    def run() -> tuple:
        net, start = overlay_net(40)
        ids = say(net, start, 10)
        return tuple(sorted(net.controls.items())), tuple(net.messages[ids[-1]].got.items())

    assert run() == run()
