"""The overlay router (``engine/overlay_router.py``) in real engines, in one process (simnet)."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from whisper.config import Config
from whisper.engine.overlay_router import LINGER, ROUTING
from whisper.engine.simnet import SimNet
from whisper.routing import wire
from whisper.routing.overlay import OverlayConfig

SEED = 7
MAX_LINKS = 8  # issue 14: at most 8 peers linked to each
MAX_CONNECTIONS = 16  # ... and at most 16 TCP connections in and out


def overlay_net(seed: int = SEED) -> SimNet:
    return SimNet(config=Config(host="10.0.0.1", discovery=None, routing=OverlayConfig(seed=seed)))


def address(i: int) -> str:
    return f"10.0.{i // 250}.{i % 250 + 1}:5000"


def grow(net: SimNet, count: int, rng: random.Random, **changes) -> list[str]:
    """``count`` peers joining one every 0.2 s, each through a random earlier one."""
    added: list[str] = []
    start = len(net.peers)
    for i in range(start, start + count):
        contacts = [rng.choice(list(net.peers))] if net.peers else []
        net.add(address(i), peers=contacts, **changes)
        added.append(address(i))
        net.advance(0.2)
    return added


def say_rounds(net: SimNet, rng: random.Random, tag: str, count: int) -> list[str]:
    bodies = []
    for k in range(count):
        body = f"{tag}{k}"
        net.say(rng.choice(list(net.peers)), body)
        bodies.append(body)
        net.advance(1.0)
    return bodies


def missing(net: SimNet, bodies: list[str]) -> list[tuple[str, str]]:
    """(peer, body) for each message a peer neither wrote nor was shown."""
    out = []
    for addr, peer in net.peers.items():
        had = {e.message.body for e in peer.events if getattr(e, "own", None) is not None}
        out += [(addr, b) for b in bodies if b not in had]
    return out


def totals(net: SimNet) -> tuple[int, int]:
    """Duplicates dropped and messages delivered, over the whole network."""
    peers = net.peers.values()
    return sum(p.engine.stats.duplicates for p in peers), sum(len(p.delivered) for p in peers)


def test_sixty_peers_deliver_everything_with_few_links_and_duplicates():
    rng = random.Random(SEED)
    net = overlay_net()
    grow(net, 60, rng)
    net.advance(30)  # the views fill, the first shuffles run
    say_rounds(net, rng, "warm", 10)  # the tree forms: duplicates prune the other links
    dups0, got0 = totals(net)
    bodies = say_rounds(net, rng, "steady", 20)
    dups, got = totals(net)
    assert missing(net, bodies) == []
    assert got - got0 == 20 * 59
    assert (dups - dups0) / (got - got0) <= 0.1
    for addr, peer in net.peers.items():
        active, _ = peer.engine.overlay.snapshot()
        assert len(active) <= 5
        assert len(net.linked(addr)) <= MAX_LINKS
        incoming = len(peer.engine.table.incoming)
        assert len(peer.engine.table.outgoing) + incoming <= MAX_CONNECTIONS


def test_survivors_of_a_crash_get_everything_again():
    rng = random.Random(SEED + 1)
    net = overlay_net(SEED + 1)
    grow(net, 60, rng)
    net.advance(30)
    say_rounds(net, rng, "warm", 5)
    for addr in rng.sample(list(net.peers), 18):  # 30% at once
        net.remove(addr)
    net.advance(10)  # repair: passive peers asked, grafts
    bodies = say_rounds(net, rng, "after", 10)
    assert missing(net, bodies) == []
    for addr in net.peers:
        assert len(net.linked(addr)) <= MAX_LINKS


def presence_copies(net: SimNet, seconds: float) -> tuple[int, int]:
    """Over ``seconds``: announcements read again (dropped as duplicates), and announcements
    that told a peer something new (a user's last seen moved)."""
    peers = net.peers.values()
    dups0 = sum(p.engine.presence.duplicates for p in peers)
    seen0 = {id(p): {u.addr: u.seen for u in p.engine.presence.users.values()} for p in peers}
    net.advance(seconds)
    fresh = sum(
        u.seen > seen0[id(p)].get(u.addr, -1.0)
        for p in peers
        for u in p.engine.presence.users.values()
    )
    return sum(p.engine.presence.duplicates for p in peers) - dups0, fresh


def test_presence_follows_the_tree_of_an_author_who_has_spoken():
    """Each peer announces itself every 60 s (presence.py).  Flooded, each peer would read
    each announcement once per neighbour (4.1 duplicates a delivery with this seed); along
    the author's tree, about once."""
    rng = random.Random(SEED + 5)
    net = overlay_net(SEED + 5)
    grow(net, 40, rng)
    net.advance(30)
    for addr in list(net.peers):  # every author's tree forms
        net.say(addr, f"hello from {addr}")
        net.advance(0.2)
    net.advance(5)
    dups, fresh = presence_copies(net, 60.0)
    assert fresh == 40 * 39  # every peer heard from every other one in the period
    assert dups / fresh <= 0.25
    assert all(len(p.engine.presence.users) == 39 for p in net.peers.values())


def test_mixed_network_of_overlay_and_flood_peers_delivers_everything():
    rng = random.Random(SEED + 2)
    net = overlay_net(SEED + 2)
    grow(net, 12, rng)
    flood = grow(net, 4, rng, routing=None)  # -routing flood: old whisper
    grow(net, 8, rng)
    net.advance(30)
    bodies = say_rounds(net, rng, "mixed", 20)
    for addr in flood:  # and one said by each flood peer
        net.say(addr, f"from {addr}")
        bodies.append(f"from {addr}")
        net.advance(1.0)
    assert missing(net, bodies) == []
    _, fresh = presence_copies(net, 60.0)  # presence too: along trees, or flooded
    assert fresh == 24 * 23
    for addr in flood:  # they were never sent a routing control (one would be ignored)
        assert net.peers[addr].engine.stats.ignored == 0
        assert ROUTING not in net.peers[addr].engine.speaks


def test_a_legacy_origin_is_dialled_back_and_relayed_to_everyone():
    rng = random.Random(SEED + 3)
    net = overlay_net(SEED + 3)
    peers = grow(net, 10, rng)
    net.advance(30)
    conn = net.raw(peers[0], remote="10.9.9.9:1")  # a Go-like peer: no banner, no hello
    message = {"ID": "0123456789abcdef", "Addr": "10.9.9.9:7", "Body": "from go"}
    net.write(peers[0], conn, message)
    assert missing(net, ["from go"]) == []
    net.advance(2)  # the dial waits a second for a hello that never comes
    assert "10.9.9.9:7" in net.peers[peers[0]].engine.table.outgoing
    assert all("10.9.9.9:7" not in net.peers[a].engine.table.outgoing for a in peers[1:])


def test_controls_count_only_from_a_connection_whose_hello_named_routing():
    net = overlay_net()
    a = net.add(address(0)).addr
    net.advance(1)
    engine = net.peers[a].engine
    conn = net.raw(a, remote="10.9.9.9:1")
    join = wire.to_object(wire.Join("10.9.9.9:7"))
    net.write(a, conn, join)  # no hello yet: ignored
    assert engine.overlay.controls_received == 0
    hello = {"Ctl": "hello", "Addr": "10.9.9.9:7", "Nick": "", "Speaks": [ROUTING]}
    net.write(a, conn, hello, wire.to_object(wire.Join("10.9.9.9:8")))  # not its hello's Addr
    assert engine.overlay.controls_received == 0
    net.write(a, conn, {"Ctl": "forwardjoin", "Addr": "10.9.9.9:7", "Peer": "x", "TTL": 1})
    assert conn.invalid == 1  # a malformed control counts against the connection
    net.write(a, conn, join)  # taken: it dials the newcomer (refused: nobody is there)
    assert engine.overlay.controls_received == 1
    assert engine.stats.ignored == 0


def test_a_link_that_leaves_the_active_view_lingers_then_closes():
    rng = random.Random(SEED + 4)
    net = overlay_net(SEED + 4)
    peers = grow(net, 8, rng)
    net.advance(30)
    a = net.peers[peers[0]]
    active, _ = a.engine.overlay.snapshot()
    victim = active[0]
    # the victim says it is leaving us, on its own link: we drop it and keep our link to it
    # a moment (our last controls go out on it), then close it
    _, conn = net._pipes[net.peers[victim].engine.table.outgoing[a.addr]]
    net.write(a.addr, conn, wire.to_object(wire.Disconnect(victim)))
    assert victim not in a.engine.overlay.snapshot()[0]
    assert victim in a.engine.table.outgoing  # lingering: its last controls go out
    net.advance(LINGER + 0.1)
    assert victim not in a.engine.table.outgoing or victim in a.engine.overlay.snapshot()[0]


def test_discover_shuffles_now():
    rng = random.Random(SEED + 5)
    net = overlay_net(SEED + 5)
    peers = grow(net, 6, rng)
    net.advance(5)
    engine = net.peers[peers[-1]].engine
    sent = engine.overlay.controls_sent
    done, _ = engine.discover(net.now)
    assert done
    assert engine.overlay.controls_sent == sent + 1
    lonely = SimNet(config=Config(host="10.0.0.1", discovery=None, routing=OverlayConfig()))
    alone = lonely.add(address(0)).engine
    assert alone.discover(0.0) == (False, [])


KINDS = ["join", "forwardjoin", "neighbor", "accept", "reject", "disconnect", "shuffle"]
KINDS += ["shufflereply", "ihave", "graft", "prune", "hello", "nonsense"]
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 40),
    st.text(max_size=30),
    st.sampled_from(["10.9.9.9:7", "10.0.0.1:5000", "10.0.0.2:5000", "[::1]:5", "x:y"]),
    st.lists(st.sampled_from(["10.9.9.8:1", "10.0.0.2:5000", "m", "", 5]), max_size=20),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.fixed_dictionaries(
            {"Ctl": st.sampled_from(KINDS), "Addr": st.sampled_from(["10.9.9.9:7", "x"])},
            optional={k: VALUES for k in ("Peer", "TTL", "Prio", "Origin", "Peers", "IDs")},
        ),
        max_size=12,
    )
)
def test_whatever_controls_a_neighbour_writes_the_peer_keeps_routing(controls):
    net = overlay_net()
    a, b = address(0), address(1)
    net.add(a)
    net.add(b, peers=[a])
    net.advance(5)
    conn = net.raw(a, remote="10.9.9.9:1")
    hello = {"Ctl": "hello", "Addr": "10.9.9.9:7", "Nick": "", "Speaks": [ROUTING]}
    net.write(a, conn, hello, *controls)
    net.advance(5)
    net.say(b, "still routing?")
    assert "still routing?" in net.peers[a].bodies


def test_presence_never_goes_to_an_overlay_link_that_does_not_speak_it():
    """A neighbour whose banner names routing but not presence: a peer with such a neighbour
    floods its announcements to the others (the tree is not whole for presence), and never
    writes one on that link; everyone still hears from everyone."""
    rng = random.Random(SEED + 6)
    net = overlay_net(SEED + 6)
    grow(net, 20, rng)
    net.advance(30)
    for addr in list(net.peers):
        net.say(addr, f"hello from {addr}")
        net.advance(0.2)
    net.advance(5)
    peer = net.peers[address(3)]
    plumtree = peer.engine.overlay.overlay.tree
    assert plumtree.has_tree(peer.addr)
    neighbour = next(iter(plumtree.tree(peer.addr).eager))  # one its own messages go to
    link = peer.engine.table.outgoing[neighbour]
    link.caps = link.caps - {"presence"}
    written: list[bytes] = []
    data_to_send = peer.engine.data_to_send

    def recording(out_link):
        data = data_to_send(out_link)
        if out_link is link:
            written.append(data)
        return data

    peer.engine.data_to_send = recording
    _, fresh = presence_copies(net, 60.0)
    assert fresh == 20 * 19
    assert written and not any(b'"Presence"' in data for data in written)


def each_way(peer) -> tuple[int, int]:
    table = peer.engine.table
    return len(table.outgoing), len(table.incoming)


def test_a_peer_everyone_joins_through_keeps_at_most_eight_links_each_way():
    """Twenty peers join through one within a second: the hub's overlay connections stay at
    8 each way (those that carried a forwarded join give way to newer ones), every peer
    keeps within the caps, and every message still reaches everyone."""
    rng = random.Random(SEED + 6)
    net = overlay_net(SEED + 6)
    hub = net.add(address(0))
    assert each_way(hub) == (0, 0)
    most = (0, 0)
    for i in range(1, 21):
        net.add(address(i), peers=[hub.addr])
        net.advance(0.05)
        most = tuple(map(max, most, each_way(hub)))
    assert most[1] == MAX_LINKS  # full: the cap, not the views, held it
    assert hub.engine.overlay.slots.given_way > 0
    for _ in range(60):
        net.advance(0.5)
        for peer in net.peers.values():
            out, into = each_way(peer)
            assert out <= MAX_LINKS and into <= MAX_LINKS
    bodies = say_rounds(net, rng, "crowd", 5)
    assert missing(net, bodies) == []
