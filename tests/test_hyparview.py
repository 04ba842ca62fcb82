"""HyParView membership (whisper/routing/hyparview.py): each rule of the paper, synchronously."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from whisper.routing import wire
from whisper.routing.actions import Connect, Disconnect, Send
from whisper.routing.hyparview import HyParView, HyParViewConfig

ME = "10.0.0.1:55555"


def peer(n: int) -> str:
    return f"10.0.1.{n}:55555"


def node(active: int = 0, passive: int = 0, **config: object) -> HyParView:
    hv = HyParView(ME, random.Random(7), HyParViewConfig(**config))  # type: ignore[arg-type]
    hv.active = {peer(i): None for i in range(1, active + 1)}
    hv.passive = {peer(100 + i): None for i in range(1, passive + 1)}
    return hv


def sent(actions: list, kind: type) -> list[Send]:
    return [a for a in actions if type(a) is Send and type(a.control) is kind]


def test_a_newcomer_sends_join_to_one_contact() -> None:
    hv = node()
    actions = hv.join([peer(1), ME], now=0.0)
    assert actions == [Send(peer(1), wire.Join(ME))]


def test_the_contact_takes_the_newcomer_and_forwards_the_join_to_its_other_neighbours() -> None:
    hv = node(active=3)
    actions = hv.received(wire.Join(peer(9)), now=0.0)
    assert peer(9) in hv.active and Connect(peer(9)) in actions
    assert Send(peer(9), wire.Accept(ME)) in actions
    forwards = sent(actions, wire.ForwardJoin)
    assert {a.peer for a in forwards} == {peer(1), peer(2), peer(3)}
    assert all(a.control == wire.ForwardJoin(ME, peer(9), 6) for a in forwards)


def test_a_full_contact_drops_a_random_neighbour_with_a_disconnect_first() -> None:
    hv = node(active=5)
    actions = hv.received(wire.Join(peer(9)), now=0.0)
    assert len(hv.active) == 5 and peer(9) in hv.active
    (notice,) = sent(actions, wire.Disconnect)
    victim = notice.peer
    assert victim not in hv.active and victim in hv.passive
    assert actions.index(notice) < actions.index(Disconnect(victim))  # told, then closed


def test_forward_join_walks_on_and_leaves_the_newcomer_passive_at_prwl() -> None:
    hv = node(active=3)
    actions = hv.received(wire.ForwardJoin(peer(1), peer(9), 3), now=0.0)
    assert peer(9) in hv.passive and peer(9) not in hv.active
    (forward,) = sent(actions, wire.ForwardJoin)
    assert forward.peer in (peer(2), peer(3)) and forward.control.ttl == 2


def test_forward_join_is_not_kept_passive_away_from_prwl() -> None:
    hv = node(active=3)
    hv.received(wire.ForwardJoin(peer(1), peer(9), 5), now=0.0)
    assert peer(9) not in hv.passive


def test_forward_join_ends_at_ttl_zero_with_a_high_priority_request() -> None:
    hv = node(active=3)
    actions = hv.received(wire.ForwardJoin(peer(1), peer(9), 0), now=0.0)
    assert actions == [Send(peer(9), wire.Neighbor(ME, True))]
    assert peer(9) not in hv.active  # only once it accepts
    hv.received(wire.Accept(peer(9)), now=0.1)
    assert peer(9) in hv.active


def test_forward_join_ends_at_a_peer_with_one_neighbour() -> None:
    hv = node(active=1)
    actions = hv.received(wire.ForwardJoin(peer(1), peer(9), 4), now=0.0)
    assert sent(actions, wire.Neighbor) == [Send(peer(9), wire.Neighbor(ME, True))]


def test_a_high_priority_request_is_accepted_even_when_full() -> None:
    hv = node(active=5)
    actions = hv.received(wire.Neighbor(peer(9), True), now=0.0)
    assert peer(9) in hv.active and len(hv.active) == 5
    assert Send(peer(9), wire.Accept(ME)) in actions and len(sent(actions, wire.Disconnect)) == 1


def test_a_low_priority_request_takes_only_a_free_slot() -> None:
    hv = node(active=4)
    assert Send(peer(9), wire.Accept(ME)) in hv.received(wire.Neighbor(peer(9), False), 0.0)
    actions = hv.received(wire.Neighbor(peer(10), False), now=0.0)
    assert actions == [Send(peer(10), wire.Reject(ME))]
    assert peer(10) in hv.passive and peer(10) not in hv.active


def test_an_accept_nobody_asked_for_is_undone_when_there_is_no_room() -> None:
    hv = node(active=5)
    actions = hv.received(wire.Accept(peer(9)), now=0.0)
    assert actions == [Send(peer(9), wire.Disconnect(ME))] and peer(9) not in hv.active


def test_a_disconnect_moves_the_neighbour_to_passive_and_repairs_at_low_priority() -> None:
    hv = node(active=3, passive=4)
    actions = hv.received(wire.Disconnect(peer(1)), now=0.0)
    assert peer(1) not in hv.active and peer(1) in hv.passive
    assert Disconnect(peer(1)) in actions
    requests = sent(actions, wire.Neighbor)
    assert requests and all(not r.control.high for r in requests)
    assert all(r.peer in hv.passive for r in requests)


def test_a_failed_link_forgets_the_peer_and_asks_at_high_priority_when_alone() -> None:
    hv = node(active=1, passive=3)
    actions = hv.link_down(peer(1), now=0.0)
    assert peer(1) not in hv.active and peer(1) not in hv.passive
    requests = sent(actions, wire.Neighbor)
    assert requests[0].control.high and all(not r.control.high for r in requests[1:])
    assert len(requests) == 3  # one per free slot, as far as the passive view goes


def test_repair_goes_on_after_a_refusal_and_does_not_ask_the_refuser_again_soon() -> None:
    hv = node(active=5, passive=2)
    first = sent(hv.link_down(peer(1), now=0.0), wire.Neighbor)
    assert len(first) == 1
    refuser = first[0].peer
    second = sent(hv.received(wire.Reject(refuser), now=0.1), wire.Neighbor)
    assert len(second) == 1 and second[0].peer != refuser
    third = sent(hv.received(wire.Reject(second[0].peer), now=0.2), wire.Neighbor)
    assert third == []  # both refused: nobody left to ask for refused_for seconds
    later = sent(hv.tick(now=40.0), wire.Neighbor)
    assert len(later) == 1  # the periodic top-up, one request


def test_an_unanswered_request_counts_as_a_dead_peer() -> None:
    hv = node(active=5, passive=2)
    (request,) = sent(hv.link_down(peer(1), now=0.0), wire.Neighbor)
    assert hv.next_deadline() == 3.0
    actions = hv.tick(now=3.0)
    assert request.peer not in hv.passive
    (retry,) = sent(actions, wire.Neighbor)
    assert retry.peer != request.peer


def test_shuffle_sends_me_ka_active_and_kp_passive_on_a_walk() -> None:
    hv = node(active=5, passive=10)
    hv.join([], now=0.0)
    assert 24.0 <= hv.next_deadline() <= 36.0
    (shuffle,) = sent(hv.tick(now=hv.next_deadline()), wire.Shuffle)
    s = shuffle.control
    assert s.origin == ME and s.ttl == 6 and s.peers[0] == ME and len(s.peers) == 8
    assert shuffle.peer in hv.active and shuffle.peer not in s.peers
    assert len(set(s.peers[1:4]) & hv.active.keys()) == 3
    assert len(set(s.peers[4:]) & hv.passive.keys()) == 4


def test_shuffle_now_shuffles_at_once() -> None:
    hv = node(active=2)
    assert len(sent(hv.shuffle_now(now=1.0), wire.Shuffle)) == 1


def test_a_shuffle_walks_on_while_ttl_remains() -> None:
    hv = node(active=3)
    actions = hv.received(wire.Shuffle(peer(1), peer(50), 3, (peer(50), peer(51))), now=0.0)
    (forward,) = sent(actions, wire.Shuffle)
    assert forward.peer in (peer(2), peer(3)) and forward.control.ttl == 2
    assert peer(51) not in hv.passive


def test_the_end_of_a_shuffle_walk_answers_the_origin_and_keeps_what_it_got() -> None:
    hv = node(active=3, passive=5)
    offered = (peer(50), peer(51), peer(52))
    actions = hv.received(wire.Shuffle(peer(1), peer(50), 1, offered), now=0.0)
    (reply,) = sent(actions, wire.ShuffleReply)
    assert reply.peer == peer(50) and len(reply.control.peers) == 3
    assert set(offered) <= hv.passive.keys()


def test_a_full_passive_view_evicts_what_it_sent_first() -> None:
    hv = node(active=2, passive=30)
    actions = hv.received(wire.Shuffle(peer(1), peer(50), 1, (peer(50), peer(51))), now=0.0)
    (reply,) = sent(actions, wire.ShuffleReply)
    assert len(hv.passive) == 30 and {peer(50), peer(51)} <= hv.passive.keys()
    assert not set(reply.control.peers) & hv.passive.keys()


def test_a_shuffle_reply_is_integrated_into_the_passive_view() -> None:
    hv = node(active=2, passive=1)
    hv.received(wire.ShuffleReply(peer(1), (peer(60), ME, peer(2))), now=0.0)
    assert peer(60) in hv.passive and ME not in hv.passive and peer(2) not in hv.passive


def test_with_both_views_empty_it_joins_again_through_a_contact() -> None:
    hv = node()
    hv.join([peer(1)], now=0.0)
    hv.tick(now=3.0)  # the join went unanswered
    assert hv.next_deadline() <= 8.0
    assert sent(hv.tick(now=hv.next_deadline()), wire.Join) == [Send(peer(1), wire.Join(ME))]


_events = st.lists(
    st.tuples(
        st.sampled_from(["join", "fwd", "nbr", "acc", "rej", "disc", "shuf", "reply", "down"]),
        st.integers(1, 40),
        st.integers(0, 6),
        st.lists(st.integers(1, 40), max_size=8),
    ),
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(_events)
def test_views_stay_bounded_disjoint_and_without_me(events: list) -> None:
    hv = node(active=2, passive=3)
    now = 0.0
    for kind, n, ttl, others in events:
        now += 0.7
        p, peers = peer(n), tuple(peer(o) for o in others)
        control = {
            "join": wire.Join(p),
            "fwd": wire.ForwardJoin(p, peers[0] if peers else ME, ttl),
            "nbr": wire.Neighbor(p, ttl % 2 == 0),
            "acc": wire.Accept(p),
            "rej": wire.Reject(p),
            "disc": wire.Disconnect(p),
            "shuf": wire.Shuffle(p, peers[0] if peers else p, ttl, peers),
            "reply": wire.ShuffleReply(p, peers),
        }.get(kind)
        hv.received(control, now) if control else hv.link_down(p, now)
        hv.tick(now)
        assert len(hv.active) <= 5 and len(hv.passive) <= 30
        assert not hv.active.keys() & hv.passive.keys()
        assert ME not in hv.active and ME not in hv.passive
        assert len(hv._pending) <= 10


def test_a_contact_is_joined_through_while_the_active_view_is_short() -> None:
    hv = node(active=2)
    assert hv.contact(peer(9), now=0.0) == [Send(peer(9), wire.Join(ME))]
    assert peer(9) in hv.asked() and peer(9) in hv.contacts
    assert hv.contact(peer(9), now=0.0) == []  # asked already: no second join


def test_a_contact_is_only_passive_when_the_active_view_is_full() -> None:
    hv = node(active=5)
    assert hv.contact(peer(9), now=0.0) == []
    assert peer(9) in hv.passive and peer(9) in hv.contacts
