"""Trust on first use: binding, impostors, folding, our own nicks, the bound, saving."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whisper.identity.fingerprints import digits
from whisper.identity.pins import MAX_NICK, PROMOTE_AFTER, PinTable, Trust, fold

ALICE, BOB, MALLORY = b"A" * 32, b"B" * 32, b"M" * 32


def test_first_key_binds_the_nick_and_another_key_is_an_impostor() -> None:
    pins = PinTable()
    first = pins.assess("alice", ALICE, 0.0)
    assert first.trust is Trust.VERIFIED and first.new and first.verified
    again = pins.assess("alice", ALICE, 1.0)
    assert again.trust is Trust.VERIFIED and not again.new
    impostor = pins.assess("alice", MALLORY, 2.0)
    assert impostor.trust is Trust.IMPOSTOR and not impostor.verified
    assert (impostor.key, impostor.pinned) == (MALLORY, ALICE)
    assert pins.key_for("alice") == ALICE  # the pin did not move
    assert pins.assess("mallory", MALLORY, 3.0).trust is Trust.VERIFIED


def test_unsigned_messages_never_bind_or_contradict() -> None:
    pins = PinTable()
    assert pins.assess("alice", None, 0.0).trust is Trust.UNSIGNED
    assert pins.key_for("alice") is None
    pins.assess("alice", ALICE, 1.0)
    assert pins.assess("alice", None, 2.0).trust is Trust.UNSIGNED  # relayed by a Go peer


@pytest.mark.parametrize("nick", ["", "x" * (MAX_NICK + 1), "\u200b\u200b", " "])
def test_a_nick_that_cannot_be_bound_is_unbound(nick: str) -> None:
    pins = PinTable()
    assessment = pins.assess(nick, ALICE, 0.0)
    assert assessment.trust is Trust.UNBOUND and not assessment.verified
    assert len(pins) == 0


@pytest.mark.parametrize(
    "lookalike",
    ["Alice", "ALICE", "alice\u200b", "\uff41\uff4c\uff49\uff43\uff45", "al ice", "alice\t"],
)
def test_folded_lookalikes_are_impostors(lookalike: str) -> None:
    pins = PinTable()
    pins.assess("alice", ALICE, 0.0)
    assert pins.assess(lookalike, MALLORY, 1.0).trust is Trust.IMPOSTOR
    assert pins.assess(lookalike, ALICE, 1.0).trust is Trust.VERIFIED


def test_other_scripts_are_not_folded_a_fingerprint_tells_them_apart() -> None:
    pins = PinTable()
    pins.assess("alice", ALICE, 0.0)
    assert pins.assess("\u0430lice", MALLORY, 1.0).trust is Trust.VERIFIED  # Cyrillic a
    assert digits(MALLORY)[:10] != digits(ALICE)[:10]


def test_our_own_nick_is_ours_and_says_who_held_it() -> None:
    pins = PinTable()
    pins.assess("bob", BOB, 0.0)
    assert pins.pin_own("alice", ALICE, 0.0) is None
    assert pins.assess("alice", MALLORY, 1.0).trust is Trust.IMPOSTOR
    held = pins.pin_own("bob", ALICE, 2.0)  # /nick bob: bob was someone else's
    assert held is not None and held.key == BOB
    assert pins.assess("bob", BOB, 3.0).trust is Trust.IMPOSTOR  # on our screen, ours wins


def test_probation_churns_but_protected_pins_stay() -> None:
    pins = PinTable(max_pins=40)  # probation holds 10
    pins.assess("alice", ALICE, 0.0)
    pins.assess("alice", ALICE, PROMOTE_AFTER)  # seen an hour later: protected
    for i in range(1000):  # a burst of fresh nicks, each with its own key
        pins.assess(f"sybil{i}", i.to_bytes(32, "big"), PROMOTE_AFTER + i)
    assert len(pins) <= 40
    assert pins.key_for("alice") == ALICE
    assert pins.assess("alice", MALLORY, 5000.0).trust is Trust.IMPOSTOR
    assert pins.key_for("sybil0") is None and pins.key_for("sybil999") is not None


def test_the_protected_segment_forgets_the_least_recently_seen() -> None:
    pins = PinTable(max_pins=8)  # 2 on probation, 6 protected
    for i in range(7):
        nick, key = f"user{i}", bytes([i]) * 32
        pins.assess(nick, key, float(i))
        pins.assess(nick, key, PROMOTE_AFTER + i)
    assert len(pins) == 6 and pins.key_for("user0") is None and pins.key_for("user6") is not None


def test_typed_fingerprints_find_keys() -> None:
    pins = PinTable()
    pins.assess("alice", ALICE, 0.0)
    pins.assess("alice2", ALICE, 0.0)
    pins.assess("bob", BOB, 0.0)
    (found,) = pins.by_fingerprint(digits(ALICE)[:10])
    assert found.key == ALICE
    assert pins.by_fingerprint(digits(BOB))[0].nick == "bob"
    assert pins.by_fingerprint("0" * 30) == [] or digits(ALICE) == "0" * 30


def test_pins_survive_a_restart_and_bad_records_are_skipped() -> None:
    pins = PinTable()
    pins.pin_own("me", MALLORY, 0.0)
    pins.assess("alice", ALICE, 0.0)
    pins.assess("alice", ALICE, PROMOTE_AFTER)
    pins.assess("bob", BOB, 10.0)
    saved = json.loads(json.dumps(pins.records()))
    assert {r["nick"] for r in saved} == {"alice", "bob"}  # own pins are made again each run
    hostile = [None, 5, {"nick": 1}, {"nick": "x", "key": "??", "first_seen": 0, "last_seen": 0}]
    hostile += [{"nick": "y", "key": saved[0]["key"], "first_seen": float("nan"), "last_seen": 0}]
    later = PinTable()
    assert later.restore([*saved, *hostile, *saved]) == 2
    assert later.key_for("alice") == ALICE and later.key_for("bob") == BOB
    assert later.assess("alice", MALLORY, 20.0).trust is Trust.IMPOSTOR


@settings(max_examples=500)
@given(st.text(max_size=200))
def test_folding_is_bounded_and_idempotent(nick: str) -> None:
    folded = fold(nick)
    if len(nick) > MAX_NICK:
        assert folded is None
    elif folded is not None and len(folded) <= MAX_NICK:
        assert fold(folded) == folded
