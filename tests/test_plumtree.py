"""Plumtree broadcast (whisper/routing/plumtree.py): each rule of the paper, synchronously."""

from __future__ import annotations

from whisper.routing import wire
from whisper.routing.actions import Deliver, Push, Send
from whisper.routing.plumtree import Plumtree, PlumtreeConfig

ME = "10.0.0.1:55555"
A, B, C, D = (f"10.0.1.{n}:55555" for n in range(1, 5))
GO = "10.0.2.1:55555"


def tree(eager: tuple[str, ...] = (A, B), lazy: tuple[str, ...] = (C, D), **config) -> Plumtree:
    pt = Plumtree(ME, PlumtreeConfig(**config))
    for p in (*eager, *lazy):
        pt.neighbor_up(p)
    for p in lazy:
        pt.received(wire.Prune(p), 0.0)
    return pt


def controls(actions: list, kind: type) -> list[Send]:
    return [a for a in actions if type(a) is Send and type(a.control) is kind]


def test_a_new_neighbour_is_eager() -> None:
    pt = Plumtree(ME)
    pt.neighbor_up(A)
    assert A in pt.eager and not pt.lazy


def test_our_message_goes_whole_to_eager_peers_and_as_an_id_to_lazy_ones() -> None:
    pt = tree()
    assert pt.broadcast("m1", b"payload", now=0.0) == [Push((A, B), "m1", b"payload")]
    assert pt.next_deadline() == 0.5
    assert pt.tick(now=0.49) == []
    actions = pt.tick(now=0.5)
    assert sorted(actions, key=lambda a: a.peer) == [
        Send(C, wire.IHave(ME, ("m1",))),
        Send(D, wire.IHave(ME, ("m1",))),
    ]


def test_ids_queued_within_the_lazy_delay_go_in_one_ihave() -> None:
    pt = tree(lazy=(C,))
    for i in range(3):
        pt.broadcast(f"m{i}", b"x", now=0.1 * i)
    assert pt.tick(now=0.5) == [Send(C, wire.IHave(ME, ("m0", "m1", "m2")))]


def test_queued_ids_ride_along_with_a_message_pushed_to_the_same_peer() -> None:
    pt = tree(eager=(A,), lazy=(C,))
    pt.gossip(A, "m1", b"p", now=0.0, root="10.0.3.1:55555")  # C lazy: "m1" queued for C
    pt.received(wire.Graft(C, ()), now=0.1)  # C is eager again (for every root)
    out = pt.gossip(A, "m2", b"p", now=0.2, root="10.0.3.1:55555")
    assert out[1:] == [Push((C,), "m2", b"p"), Send(C, wire.IHave(ME, ("m1",)))]
    assert pt.tick(now=1.0) == []  # nothing left to announce


def test_a_full_lazy_queue_goes_out_at_once() -> None:
    pt = tree(lazy=(C,))
    out = []
    for i in range(wire.MAX_IDS + 3):
        out += controls(pt.broadcast(f"m{i}", b"x", now=0.0), wire.IHave)
    (batch,) = out
    assert len(batch.control.ids) == wire.MAX_IDS
    assert [len(a.control.ids) for a in controls(pt.tick(now=0.5), wire.IHave)] == [3]


def test_a_new_message_is_delivered_once_and_relayed_to_all_but_its_sender() -> None:
    pt = tree()
    actions = pt.gossip(A, "m1", b"p", now=0.0)
    assert actions[0] == Deliver("m1", b"p", A)
    assert Push((B,), "m1", b"p") in actions
    assert pt.tick(now=0.5) != []  # C and D are told
    assert pt.gossip(B, "m1", b"p", now=0.6)[0] != Deliver("m1", b"p", B)


def test_a_duplicate_prunes_its_sender() -> None:
    pt = tree()
    pt.gossip(A, "m1", b"p", now=0.0)
    actions = pt.gossip(B, "m1", b"p", now=0.01)
    assert actions == [Send(B, wire.Prune(ME))]
    assert B in pt.lazy and B not in pt.eager


def test_a_prune_makes_its_sender_lazy() -> None:
    pt = tree()
    pt.received(wire.Prune(A), now=0.0)
    assert A in pt.lazy and A not in pt.eager
    assert pt.broadcast("m1", b"p", now=0.0) == [Push((B,), "m1", b"p")]


def test_a_missing_message_is_grafted_from_its_first_announcer_after_the_timeout() -> None:
    pt = tree()
    pt.received(wire.IHave(C, ("m1",)), now=0.0)
    pt.received(wire.IHave(D, ("m1",)), now=0.1)
    assert pt.next_deadline() == 0.25
    assert pt.tick(now=0.24) == []
    assert pt.tick(now=0.25) == [Send(C, wire.Graft(ME, ("m1",)))]
    assert C in pt.eager  # the tree is repaired through C
    assert pt.tick(now=0.5) == [Send(D, wire.Graft(ME, ("m1",)))]  # C did not answer
    assert pt.tick(now=0.75) == [] and pt.next_deadline() == float("inf")


def test_the_message_arriving_cancels_the_graft() -> None:
    pt = tree()
    pt.received(wire.IHave(C, ("m1",)), now=0.0)
    pt.gossip(A, "m1", b"p", now=0.2)
    assert controls(pt.tick(now=1.0), wire.Graft) == []


def test_an_announcement_of_a_message_we_have_is_ignored() -> None:
    pt = tree()
    pt.gossip(A, "m1", b"p", now=0.0)
    pt.received(wire.IHave(C, ("m1",)), now=0.1)
    assert controls(pt.tick(now=5.0), wire.Graft) == []


def test_a_graft_makes_its_sender_eager_and_is_answered_with_the_message() -> None:
    pt = tree()
    pt.broadcast("m1", b"p", now=0.0)
    actions = pt.received(wire.Graft(C, ("m1", "unknown")), now=0.2)
    assert actions == [Push((C,), "m1", b"p")]
    assert C in pt.eager and C not in pt.lazy


def test_a_lost_neighbour_leaves_the_tree_and_its_announcements_are_forgotten() -> None:
    pt = tree()
    pt.received(wire.IHave(C, ("m1",)), now=0.0)
    pt.received(wire.IHave(D, ("m1",)), now=0.0)
    pt.neighbor_down(C)
    assert C not in pt.eager and C not in pt.lazy
    assert pt.tick(now=0.5) == [Send(D, wire.Graft(ME, ("m1",)))]


def test_controls_from_non_neighbours_change_nothing() -> None:
    pt = tree()
    pt.broadcast("m1", b"p", now=0.0)
    assert pt.received(wire.Graft(GO, ("m1",)), now=0.1) == []
    pt.received(wire.IHave(GO, ("m2",)), now=0.1)
    assert controls(pt.tick(now=5.0), wire.Graft) == []


def test_legacy_peers_get_every_message_whole_and_no_control() -> None:
    pt = tree()
    pt.legacy_up(GO)
    assert pt.broadcast("m1", b"p", now=0.0) == [Push((A, B, GO), "m1", b"p")]
    assert pt.gossip(GO, "m1", b"p", now=0.1) == []  # a duplicate from it: no Prune
    actions = pt.gossip(GO, "m2", b"q", now=0.2)
    assert Push((A, B), "m2", b"q") in actions
    assert all(a.peer != GO for a in pt.tick(now=1.0))


def test_a_message_whose_id_cannot_be_announced_is_pushed_to_lazy_peers_too() -> None:
    pt = tree()
    long_id = "x" * (wire.MAX_ID_LENGTH + 1)
    assert pt.broadcast(long_id, b"p", now=0.0) == [Push((A, B, C, D), long_id, b"p")]
    assert pt.tick(now=1.0) == []


def test_received_ids_and_kept_messages_are_bounded() -> None:
    pt = tree(eager=(A,), lazy=(), seen_entries=100, cache_entries=10, cache_bytes=1000)
    for i in range(500):
        pt.gossip(B, f"m{i}", b"x" * 300, now=i * 0.001, size=300)
    assert len(pt._seen) <= 100 and len(pt._cache) <= 3
    assert pt._cached_bytes <= 1000
    assert pt.received(wire.Graft(A, ("m0",)), now=1.0) == []  # long gone
    assert pt.received(wire.Graft(A, ("m499",)), now=1.0) == [Push((A,), "m499", b"x" * 300)]


def test_kept_messages_expire() -> None:
    pt = tree(eager=(A,), lazy=())
    pt.broadcast("old", b"p", now=0.0)
    pt.broadcast("new", b"p", now=61.0)
    assert pt.received(wire.Graft(A, ("old",)), now=61.0) == []


def test_missing_ids_are_bounded() -> None:
    pt = tree(missing_entries=50)
    pt.received(wire.IHave(C, tuple(f"m{i}" for i in range(200))), now=0.0)
    assert len(pt._missing) == 50


# -- a tree per root (the author of a message) ---------------------------------------------

R1, R2 = "10.0.3.1:55555", "10.0.3.2:55555"  # two authors


def test_a_duplicate_prunes_its_sender_only_in_the_tree_of_the_messages_author() -> None:
    pt = tree(eager=(A, B), lazy=())
    pt.gossip(A, "r1-first", b"p", now=0.0, root=R1)  # each root's first: a copy of the default
    pt.gossip(A, "r2-first", b"p", now=0.0, root=R2)
    pt.gossip(A, "r1-second", b"p", now=1.0, root=R1)
    out = pt.gossip(B, "r1-second", b"p", now=1.0, root=R1)  # R1's tree has a cycle via B
    assert out == [Send(B, wire.Prune(ME, R1))]  # R1's tree only: not the default
    assert B in pt.eager  # the default tree keeps B
    assert pt.gossip(A, "r1-third", b"p", now=2.0, root=R1) == [Deliver("r1-third", b"p", A)]
    out = pt.gossip(A, "r2-second", b"p", now=2.0, root=R2)  # another author's tree keeps B
    assert Push((B,), "r2-second", b"p") in out


def test_the_first_message_of_a_root_teaches_the_default_tree() -> None:
    pt = tree(eager=(A, B), lazy=())
    pt.gossip(A, "r1-first", b"p", now=0.0, root=R1)
    out = pt.gossip(B, "r1-first", b"p", now=0.0, root=R1)
    assert out == [Send(B, wire.Prune(ME, R1, True))]
    assert B in pt.lazy
    # a new root's tree is made from the default: its first message is announced to B
    assert pt.gossip(A, "r3-first", b"p", now=1.0, root="10.0.3.3:55555")[1:] == []
    assert pt.tick(now=1.5) == [Send(B, wire.IHave(ME, ("r3-first",)))]


def test_a_prune_naming_a_root_makes_its_writer_lazy_in_that_tree_alone() -> None:
    pt = tree(eager=(A, B), lazy=())
    pt.received(wire.Prune(B, R1), 0.0)
    assert B in pt.eager
    assert pt.gossip(A, "r1", b"p", now=0.0, root=R1)[1:] == []  # announced to B, not pushed
    assert Push((B,), "r2", b"p") in pt.gossip(A, "r2", b"p", now=0.0, root=R2)
    pt.received(wire.Prune(B, R2, True), 0.0)
    assert B in pt.lazy  # with Default: the default tree too


def test_a_prune_without_root_makes_its_writer_lazy_in_every_tree() -> None:
    pt = tree(eager=(A, B), lazy=())
    pt.gossip(A, "r1", b"p", now=0.0, root=R1)
    pt.received(wire.Prune(B), 0.0)  # a peer that keeps a single tree
    assert B in pt.lazy
    assert pt.gossip(A, "r1-again", b"p", now=1.0, root=R1)[1:] == []


def test_a_graft_makes_the_link_eager_in_every_tree() -> None:
    pt = tree(eager=(A,), lazy=(B,))
    pt.gossip(A, "r1", b"p", now=0.0, root=R1)
    pt.gossip(A, "r2", b"p", now=0.0, root=R2)
    pt.received(wire.Graft(B, ("r1",)), 0.1)  # a cut repaired through B: every tree's cut
    assert B in pt.eager
    for root in (R1, R2):
        assert Push((B,), f"{root}-next", b"p") in pt.gossip(A, f"{root}-next", b"p", 1.0, 0, root)


def test_the_trees_kept_are_bounded_and_a_forgotten_root_starts_from_the_default() -> None:
    pt = tree(eager=(A, B), lazy=(), roots=2)
    pt.received(wire.Prune(B, R1), 0.0)
    pt.gossip(A, "r2", b"p", now=0.0, root=R2)
    pt.gossip(A, "r3", b"p", now=0.0, root="10.0.3.3:55555")  # R1's tree is forgotten
    assert Push((B,), "r1", b"p") in pt.gossip(A, "r1", b"p", now=0.0, root=R1)


def test_a_payload_that_follows_a_tree_goes_its_way_and_moves_no_link() -> None:
    pt = tree()
    pt.gossip(A, "m1", b"chat", now=0.0, root=GO)  # GO's tree: from the default, A eager
    pt.gossip(B, "m1", b"chat", now=0.0, root=GO)  # a duplicate: B lazy in GO's tree
    pt.tick(now=0.5)
    assert pt.has_tree(GO) and not pt.has_tree(ME)
    before = (dict(pt.tree(GO).eager), dict(pt.tree(GO).lazy))
    assert list(before[0]) == [A]
    actions = pt.follow(C, "p1", b"presence", now=1.0, size=8, root=GO)  # from a lazy link
    assert actions == [Deliver("p1", b"presence", C), Push((A,), "p1", b"presence")]
    assert pt.follow(D, "p1", b"presence", now=1.1, size=8, root=GO) == []  # no prune
    assert (pt.tree(GO).eager, pt.tree(GO).lazy) == before  # C was not made eager
    sent = pt.tick(now=1.5)  # announced to the lazy links but the one it came from
    assert sorted((s.peer, s.control.ids) for s in controls(sent, wire.IHave)) == [
        (B, ("p1",)),
        (D, ("p1",)),
    ]
    assert pt.received(wire.Graft(D, ("p1",)), now=2.0) == [Push((D,), "p1", b"presence")]
