"""The overlay's connection caps (``engine/overlay_slots.py``), fed by hand: no engine."""

from __future__ import annotations

from whisper.engine.overlay_slots import OverlaySlots
from whisper.peers import Peer, State


class Conn:
    """What the slots read of an incoming connection."""

    def __init__(self, addr: str, caps: frozenset[str] = frozenset({"routing"})) -> None:
        self.addr, self.caps, self.closed = addr, caps, None


def slots(keep: set[str], outgoing: dict | None = None, dialled: set | None = None):
    closed: list[tuple[str, str]] = []

    def close(conn, why: str) -> None:
        conn.closed = why
        closed.append((conn.addr, why))

    outgoing = {} if outgoing is None else outgoing
    dialled = set() if dialled is None else dialled
    made = OverlaySlots(4, outgoing, dialled, lambda: keep, close)
    return made, closed


def test_a_new_overlay_connection_takes_the_slot_of_the_oldest_that_is_no_neighbour():
    s, closed = slots(keep={"a", "c"})
    conns = [Conn(x) for x in "abcd"]
    assert [s.refuse(c) for c in conns] == [None] * 4
    assert s.refuse(Conn("e")) is None
    assert closed[0][0] == "b" and "newer overlay connection (e)" in closed[0][1]
    assert s.refuse(Conn("f")) is None
    assert [a for a, _ in closed] == ["b", "d"]
    assert (s.given_way, s.refused) == (2, 0)


def test_when_every_slot_is_a_neighbours_only_a_neighbour_gets_in():
    s, closed = slots(keep={"a", "b", "c", "d", "e"})
    for x in "abcd":
        assert s.refuse(Conn(x)) is None
    assert s.refuse(Conn("z")) == "4 overlay connections already, all neighbours"
    assert s.refuse(Conn("e")) is None  # an active neighbour's own connection
    assert closed == [] and s.refused == 1


def test_legacy_and_ended_connections_take_no_slot():
    s, closed = slots(keep=set())
    for x in "abcd":
        assert s.refuse(Conn(x, frozenset())) is None  # no routing: legacy, not counted
    first = Conn("a")
    assert s.refuse(first) is None
    first.closed = "ended"
    for x in "bcde":
        assert s.refuse(Conn(x)) is None
    assert closed == []


def link(addr: str, caps: frozenset[str]) -> Peer:
    peer = Peer(addr, True, State.CONNECTED, 0.0)
    peer.caps = caps
    return peer


def test_a_dial_for_membership_into_full_slots_closes_a_lingering_link_or_is_not_made():
    routing = frozenset({"routing"})
    outgoing = {x: link(x, routing) for x in "abc"}
    outgoing["legacy"] = link("legacy", frozenset())  # not counted
    dialled = set()
    s, _ = slots(keep={"a", "b"}, outgoing=outgoing, dialled=dialled)
    assert s.room(linger=["c"]) == (True, None)  # 3 of 4: room, nothing closed
    outgoing["d"] = link("d", frozenset())  # dialled for membership, its banner not come yet
    dialled.add("d")
    assert s.room(linger=["a", "c"]) == (True, "c")  # 4 of 4; a is a neighbour: it stays
    assert s.room(linger=["a", "gone"]) == (False, None)
    assert (s.given_way, s.refused) == (1, 1)
