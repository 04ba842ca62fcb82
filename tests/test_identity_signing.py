"""Signed messages: round trips, tampering, relays that re-encode or strip, hostile values."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper import codec
from whisper.identity import signing
from whisper.identity.encoding import encode_b64
from whisper.identity.keys import Identity
from whisper.identity.signing import KEY, SIG, SigStatus, sign, signed_bytes, verify
from whisper.ids import hashed_id, random_id
from whisper.message import Message

from .gopeer import FIELDS as GO_FIELDS
from .gopeer import go_encode

ALICE = Identity(bytes(range(32)))
MALLORY = Identity(bytes(range(100, 132)))
ADDR = "10.0.0.5:55555"
STAMP = 1795265846123


def chat(body: str = "hello", **extra: Any) -> dict[str, Any]:
    fields = {
        "ID": hashed_id(ADDR, body, STAMP),
        "Addr": ADDR,
        "Body": body,
        "Nick": "alice",
        "omitempty": "alice",
        "Timestamp": STAMP,
    }
    fields.update(extra)
    return fields


def wire(fields: dict[str, Any]) -> dict[str, Any]:
    """What a receiver decodes from our encoding of ``fields``."""
    (obj,) = codec.decode_all(codec.encode_object(fields))
    assert isinstance(obj, dict)
    return obj


def test_a_signed_message_verifies_as_its_signer() -> None:
    signed = sign(ALICE, chat())
    assert list(signed)[-2:] == [KEY, SIG]
    verdict = verify(wire(signed))
    assert verdict.status is SigStatus.VALID and verdict.key == ALICE.public
    assert verify(signed).valid


def test_a_message_without_key_or_sig_is_unsigned() -> None:
    verdict = verify(chat())
    assert verdict.status is SigStatus.UNSIGNED and verdict.key is None and not verdict.valid


TAMPERS = {
    "ID": lambda m: m.update(ID=random_id()),
    "Addr": lambda m: m.update(Addr="10.0.0.6:55555"),
    "Body": lambda m: m.update(Body="hellp"),
    "Nick": lambda m: m.update(Nick="mallory"),
    "omitempty only (no Nick)": lambda m: (m.pop("Nick"), m.update(omitempty="mallory")),
    "Nick added (only omitempty signed)": lambda m: m.update(Nick="mallory"),
    "Timestamp": lambda m: m.update(Timestamp=STAMP + 1),
    "Timestamp removed": lambda m: m.pop("Timestamp"),
    "Timestamp 0 added": lambda m: m.update(Timestamp=0),
    "Channel added": lambda m: m.update(Channel="#elsewhere"),
    "Channel empty": lambda m: m.update(Channel=""),
    "FileName added": lambda m: m.update(FileName="evil.exe"),
    "FileContents": lambda m: m.update(FileContents="AAAA"),
    "Key": lambda m: m.update(Key=MALLORY.key_text),
    "Sig bit flipped": lambda m: m.update(Sig=encode_b64(_flip(m["Sig"]))),
}


def _flip(sig_text: str) -> bytes:
    import base64

    raw = bytearray(base64.b64decode(sig_text))
    raw[10] ^= 0x01
    return bytes(raw)


@pytest.mark.parametrize("what", list(TAMPERS))
def test_tampering_with_any_signed_field_fails(what: str) -> None:
    base = chat()
    if what == "Nick added (only omitempty signed)":
        del base["Nick"]
    signed = wire(sign(ALICE, base))
    assert verify(signed).valid
    TAMPERS[what](signed)
    verdict = verify(signed)
    assert verdict.status is SigStatus.INVALID, what
    assert verdict.reason


def test_unsigned_keys_may_change_freely() -> None:
    signed = wire(sign(ALICE, chat()))
    signed["History"] = True  # a backlog replay (PROTOCOL.md §7.3)
    signed["Unknown"] = {"nested": [1, 2]}
    assert verify(signed).valid


def test_relay_re_encoding_keeps_the_signature() -> None:
    """Decoded, turned into a Message, encoded by the codec, decoded again: still valid."""
    signed = sign(ALICE, chat('<b>&amp; ünïcødé 😀 "quotes" \\ \n', Channel="#general"))
    relayed = wire(signed)
    for _ in range(3):
        relayed = wire(dict(Message.from_wire(relayed).fields))
    assert verify(relayed).valid


def test_a_go_peer_relay_strips_the_signature_to_unsigned() -> None:
    signed = wire(sign(ALICE, chat()))
    struct = {k: signed.get(k, 0 if k == "Timestamp" else "") for k in GO_FIELDS}
    (relayed,) = codec.decode_all(go_encode(struct))
    assert isinstance(relayed, dict) and KEY not in relayed and SIG not in relayed
    assert verify(relayed).status is SigStatus.UNSIGNED


@pytest.mark.parametrize(
    ("key", "sig", "reason"),
    [
        ("KEY", None, "Sig is missing"),
        (None, "SIG", "Key is missing"),
        (5, "SIG", "Key must be a base64 string, not int"),
        ("KEY", ["x"], "Sig must be a base64 string, not list"),
        ("A" * 1_000_000, "SIG", "Key must be 44 base64 characters"),
        ("KEY", "A" * 1_000_000, "Sig must be 88 base64 characters"),
        ("!" * 44, "SIG", "Key is not base64"),
        ("é" * 44, "SIG", "Key is not base64"),
        ("A" * 42 + "==", "SIG", "Key must be 44 base64 characters (32 bytes)"),
        ("A" * 43 + "-", "SIG", "Key is not base64"),
        ("A" * 42 + "B=", "SIG", "Key is not in canonical base64"),
        ("KEY", "A" * 85 + "B==", "Sig is not in canonical base64"),
        (encode_b64(bytes(32)), "SIG", "the signature does not verify"),  # a small-order key
        ("KEY", encode_b64(bytes(64)), "the signature does not verify"),
    ],
)
def test_malformed_key_or_sig_is_invalid_never_an_exception(
    key: object, sig: object, reason: str
) -> None:
    signed = wire(sign(ALICE, chat()))
    for name, value in ((KEY, key), (SIG, sig)):
        if value is None:
            del signed[name]
        elif value not in ("KEY", "SIG"):
            signed[name] = value
    verdict = verify(signed)
    assert verdict.status is SigStatus.INVALID
    assert verdict.reason.startswith(reason), verdict.reason


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Body", 5),
        ("Nick", ["alice"]),
        ("omitempty", None),
        ("Timestamp", -1),
        ("Timestamp", 1.5),
        ("Timestamp", True),
        ("Timestamp", 1 << 64),
        ("Channel", {"#": 1}),
        ("FileName", False),
        ("Body", "lone \udce9 surrogate"),
    ],
)
def test_a_signed_field_of_the_wrong_type_is_invalid(name: str, value: object) -> None:
    signed = wire(sign(ALICE, chat()))
    signed[name] = value
    assert verify(signed).status is SigStatus.INVALID


def test_signing_refuses_text_that_is_not_well_formed() -> None:
    with pytest.raises(ValueError, match="lone surrogate"):
        sign(ALICE, chat("a \udce9 b"))
    assert verify(wire(sign(ALICE, chat(codec.well_formed("a \udce9 b"))))).valid


def test_absent_and_empty_fields_sign_differently() -> None:
    with_channel = signed_bytes(chat(Channel=""), ALICE.public)
    without = signed_bytes(chat(), ALICE.public)
    assert with_channel != without
    moved = chat(Body="ab", Nick="c")  # "ab" + "c" must not equal "a" + "bc"
    other = chat(Body="a", Nick="bc")
    assert signed_bytes(moved, ALICE.public) != signed_bytes(other, ALICE.public)


def test_the_signed_nick_is_the_nick_shown() -> None:
    """Nick empty: omitempty is what a receiver shows, so omitempty is what is signed."""
    fields = chat(Nick="")
    assert signed_bytes(fields, ALICE.public) == signed_bytes(
        {k: v for k, v in chat().items() if k != "Nick"}, ALICE.public
    )


@given(
    body=st.text(min_size=1, max_size=200),
    nick=st.text(max_size=40),
    stamp=st.one_of(st.none(), st.integers(0, 2**63 - 1)),
    channel=st.one_of(st.none(), st.text(max_size=40)),
)
def test_any_well_formed_message_round_trips(
    body: str, nick: str, stamp: int | None, channel: str | None
) -> None:
    fields = {"ID": random_id(), "Addr": ADDR, "Body": codec.well_formed(body)}
    if nick:
        fields["Nick"] = fields["omitempty"] = codec.well_formed(nick)
    if stamp is not None:
        fields["Timestamp"] = stamp
    if channel is not None:
        fields["Channel"] = codec.well_formed(channel)
    assert verify(wire(sign(ALICE, fields))).valid


@given(st.dictionaries(st.sampled_from([*signing.SIGNED_FIELDS, SIG, "omitempty"]), st.none()))
def test_verify_never_raises_on_any_mapping(fields: dict[str, Any]) -> None:
    hostile: dict[str, Any] = {k: [None, 1.5, -3, "x", {"a": []}][hash(k) % 5] for k in fields}
    assert verify(hostile).status in (SigStatus.UNSIGNED, SigStatus.INVALID)
