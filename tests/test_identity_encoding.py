"""Length-prefixed items and strict base64: round trips, and only BadEncoding for bad input."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper.identity.encoding import (
    BadEncoding,
    b64_length,
    decode_b64,
    encode_b64,
    item,
    read_items,
    text_item,
    uint_item,
)


@given(st.lists(st.one_of(st.none(), st.binary(max_size=300)), max_size=8), st.binary(max_size=20))
def test_items_read_back_as_written(values: list[bytes | None], rest: bytes) -> None:
    data = b"".join(item(v) for v in values) + rest
    assert read_items(data, len(values)) == (values, rest)


@given(st.binary(max_size=40))
def test_reading_garbage_gives_bad_encoding_or_items(data: bytes) -> None:
    try:
        items, rest = read_items(data, 3)
    except BadEncoding:
        return
    assert len(items) == 3 and len(rest) <= len(data)


def test_absent_empty_and_integers() -> None:
    assert item(None) == text_item(None) == uint_item(None) == b"\x00"
    assert item(b"") == text_item("") == b"\x01\x00\x00\x00\x00"
    assert uint_item(1) == b"\x01\x00\x00\x00\x08" + (1).to_bytes(8, "big")
    for bad in (-1, 1 << 64, True, 1.0, "1"):
        with pytest.raises(BadEncoding):
            uint_item(bad)
    with pytest.raises(BadEncoding, match="lone surrogate"):
        text_item("\ud800")


@given(st.binary(min_size=32, max_size=32))
def test_canonical_base64_round_trips(data: bytes) -> None:
    text = encode_b64(data)
    assert len(text) == b64_length(32) and decode_b64(text, 32) == data


@given(st.one_of(st.text(max_size=100), st.integers(), st.none(), st.binary(max_size=50)))
def test_anything_else_is_bad_encoding(value: object) -> None:
    try:
        data = decode_b64(value, 32, "Key")
    except BadEncoding:
        return
    assert len(data) == 32 and base64.b64encode(data).decode() == value
