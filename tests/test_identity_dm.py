"""Direct messages: only the recipient opens them, padding, replays, impostors, hostile boxes."""

from __future__ import annotations

import base64
from typing import Any

import nacl.bindings
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whisper import codec
from whisper.identity import dm
from whisper.identity.dm import BUCKETS, PLACEHOLDER, SEALED, DMError, open_dm, seal
from whisper.identity.encoding import encode_b64, item, text_item
from whisper.identity.keys import Identity
from whisper.identity.pins import PinTable, Trust
from whisper.identity.signing import SigStatus, verify
from whisper.ids import random_id
from whisper.message import Message

ALICE = Identity(bytes(range(32)))
BOB = Identity(bytes(range(32, 64)))
CAROL = Identity(bytes(range(64, 96)))
ADDR = "10.0.0.5:55555"


def send(text: str = "meet at noon", sender: Identity = ALICE, nick: str = "alice", **kw: Any):
    outer = {"id": random_id(), "addr": ADDR, "timestamp": 1795265846123, "nick": nick}
    outer.update(kw)
    return seal(sender, BOB.public, **outer, text=text)


def relayed(fields: dict[str, Any]) -> dict[str, Any]:
    (obj,) = codec.decode_all(codec.encode_object(dict(Message.from_wire(fields).fields)))
    assert isinstance(obj, dict)
    return obj


def test_only_the_recipient_opens_a_dm() -> None:
    message = relayed(send())
    opened = open_dm(BOB, message)
    assert opened is not None and opened.status is SigStatus.VALID
    assert (opened.sender, opened.nick, opened.text) == (ALICE.public, "alice", "meet at noon")
    assert open_dm(CAROL, message) is None
    assert open_dm(ALICE, message) is None  # the sender cannot open it either (ephemeral key)


def test_the_outside_names_neither_recipient_nor_sender_nor_text() -> None:
    message = send("the secret plan")
    assert set(message) == {"ID", "Addr", "Body", "Timestamp", SEALED}
    assert message["Body"] == PLACEHOLDER
    text = codec.encode_object(message)
    for secret in (b"the secret plan", b"alice", BOB.key_text.encode(), ALICE.key_text.encode()):
        assert secret not in text
    assert verify(message).status is SigStatus.UNSIGNED  # nothing outside says who wrote it
    assert Message.from_wire(dict(message)).body == PLACEHOLDER  # a chat message to old peers


@pytest.mark.parametrize("size", [0, 1, 50, 100, 114])
def test_lengths_within_a_bucket_look_the_same(size: int) -> None:
    lengths = {len(send("x" * size)[SEALED]) for _ in range(2)}
    assert lengths == {len(send("y")[SEALED])} == {min(dm.SEALED_LENGTHS)}
    assert len(send("x" * 115)[SEALED]) > min(dm.SEALED_LENGTHS)  # 142 bytes of the 256 are ours


def test_each_bucket_has_its_own_length_and_the_largest_is_the_limit() -> None:
    seen = []
    for limit in BUCKETS:
        text = "z" * (limit - 200)
        sealed = send(text)[SEALED]
        assert len(sealed) in dm.SEALED_LENGTHS
        seen.append(len(sealed))
        assert open_dm(BOB, send(text)).text == text  # type: ignore[union-attr]
    assert seen == sorted(set(seen))
    with pytest.raises(DMError, match="at most"):
        send("z" * BUCKETS[-1])


def test_a_sealed_string_of_another_length_is_not_even_tried() -> None:
    message = send()
    message[SEALED] = message[SEALED][:-4]
    assert open_dm(BOB, message) is None


def test_another_spelling_of_the_same_box_still_opens() -> None:
    """304 bytes end in ``==``: 4 unused bits, which a relay may set without changing the box."""
    message = send()
    sealed = message[SEALED]
    assert sealed.endswith("==") and sealed[-3] in "AQgw"  # unused bits zero
    respelled = sealed[:-3] + chr(ord(sealed[-3]) + 1) + "=="
    opened = open_dm(BOB, dict(message, Sealed=respelled))
    assert opened is not None and opened.valid


def test_a_dm_re_wrapped_under_a_new_id_or_time_or_addr_does_not_verify() -> None:
    message = relayed(send())
    for change in ({"ID": random_id()}, {"Timestamp": 1795265846124}, {"Addr": "10.0.0.6:1"}):
        opened = open_dm(BOB, {**message, **change})
        assert opened is not None and opened.status is SigStatus.INVALID, change
        assert opened.reason == "the signature does not verify" and not opened.text


def test_a_dm_passed_on_to_a_third_peer_does_not_verify() -> None:
    """Bob re-seals what Alice sent him to Carol: Alice signed Bob's key, not Carol's."""
    message = send()
    inside = BOB.unsealer.decrypt(base64.b64decode(message[SEALED]))
    carol_box = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(CAROL.public)
    forwarded = dict(message, Sealed=encode_b64(nacl.bindings.crypto_box_seal(inside, carol_box)))
    opened = open_dm(CAROL, forwarded)
    assert opened is not None and opened.status is SigStatus.INVALID


def test_a_dm_from_an_impostor_key_opens_but_is_marked() -> None:
    pins = PinTable()
    genuine = open_dm(BOB, send("hi bob"))
    assert genuine is not None and genuine.valid
    assert pins.assess(genuine.nick, genuine.sender, 0.0).trust is Trust.VERIFIED
    mallory = Identity(bytes(range(200, 232)))
    forged = open_dm(BOB, send("send me your key file", sender=mallory, nick="alice"))
    assert forged is not None and forged.valid  # a valid signature, by another key
    verdict = pins.assess(forged.nick, forged.sender, 1.0)
    assert verdict.trust is Trust.IMPOSTOR and verdict.pinned == ALICE.public


def _sealed_inside(inside: bytes, outer: dict[str, Any]) -> dict[str, Any]:
    box = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(BOB.public)
    return dict(outer, Sealed=encode_b64(nacl.bindings.crypto_box_seal(inside, box)))


@pytest.mark.parametrize(
    ("inside", "reason"),
    [
        (b"", "truncated"),
        (bytes(256), "not a whispernet-dm-v1"),
        (b"\x01\xff\xff\xff\xff" + bytes(251), "runs past the end"),
        (item(b"whispernet-dm-v2") + bytes(200), "not a whispernet-dm-v1"),
        (item(dm.DOMAIN) + item(b"short") + bytes(200), "the sender's key"),
        (item(dm.DOMAIN) + item(bytes(32)) + item(bytes(10)) + bytes(200), "the signature"),
        (
            item(dm.DOMAIN) + item(bytes(32)) + item(bytes(64)) + text_item("a") + b"\x00",
            "the signature, nick or text is missing",
        ),
        (
            item(dm.DOMAIN) + item(bytes(32)) + item(bytes(64)) + item(b"\xff") + item(b"x"),
            "not UTF-8",
        ),
        (
            item(dm.DOMAIN) + item(bytes(32)) + item(bytes(64)) + item(b"a") + item(b"x") + b"pad",
            "padding is not zero",
        ),
        (
            item(dm.DOMAIN) + item(bytes(32)) + item(bytes(64)) + item(b"a") + item(b"x"),
            "the signature does not verify",
        ),
    ],
)
def test_a_box_for_us_with_a_bad_inside_is_invalid(inside: bytes, reason: str) -> None:
    outer = {"ID": random_id(), "Addr": ADDR, "Body": PLACEHOLDER, "Timestamp": 5}
    padded = inside + bytes(max(0, 256 - len(inside))) if reason != "truncated" else inside
    opened = open_dm(BOB, _sealed_inside(padded, outer))
    if len(padded) != 256:  # only a bucket's length is tried at all
        assert opened is None
        return
    assert opened is not None and opened.status is SigStatus.INVALID
    assert reason in opened.reason, opened.reason
    assert not opened.text and opened.sender is None


@pytest.mark.parametrize(
    "value",
    [None, 5, ["x"], "", "!" * 408, "é" * 408, "A" * 10_000_000, "A" * 407 + "="],
)
def test_hostile_sealed_values_are_not_for_us(value: object) -> None:
    message = send()
    message[SEALED] = value
    assert open_dm(BOB, message) is None


def test_bad_outer_fields_make_a_dm_for_us_invalid() -> None:
    message = send()
    for change in ({"ID": 5}, {"Addr": None}, {"Timestamp": "now"}):
        opened = open_dm(BOB, {**message, **change})
        assert opened is not None and opened.status is SigStatus.INVALID


def test_sealing_to_a_key_that_is_no_point_is_refused() -> None:
    with pytest.raises(DMError, match="not a usable Ed25519 public key"):
        seal(ALICE, b"\xff" * 32, id="x", addr=ADDR, timestamp=1, nick="a", text="t")
    with pytest.raises(DMError, match="lone surrogate"):
        send("bad \udce9 text")


@settings(max_examples=25, deadline=None)
@given(text=st.text(min_size=1, max_size=3000), nick=st.text(max_size=32))
def test_any_text_round_trips_to_the_recipient_only(text: str, nick: str) -> None:
    text, nick = codec.well_formed(text), codec.well_formed(nick)
    message = relayed(send(text, nick=nick))
    opened = open_dm(BOB, message)
    assert opened is not None and opened.valid and (opened.text, opened.nick) == (text, nick)
    assert open_dm(CAROL, message) is None
