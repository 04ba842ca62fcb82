"""Escaped lone surrogates decode as U+FFFD on both ijson backends (codec.py, PROTOCOL.md §1.3).

yajl read ``"\\ud800\\u0041"`` as U+10041 where Go's encoding/json reads U+FFFD then ``A``:
the same bytes were two different messages, and a hashed ID matched on one peer only.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper.codec import Decoder, SurrogateEscapes
from whisper.ids import IdCheck, check_id, hashed_id
from whisper.message import Message

from .test_codec import BACKENDS, backend

ADDR = "10.0.0.1:5"


def reference(data: bytes) -> bytes:
    """Each escape in turn, left to right: a lone surrogate becomes ``\\ufffd``."""
    out, i = bytearray(), 0
    while i < len(data):
        if data[i : i + 1] != b"\\":
            out += data[i : i + 1]
            i += 1
        elif data[i + 1 : i + 2] != b"u":
            out += data[i : i + 2]  # a two-byte escape, "\\\\" included
            i += 2
        elif (
            _high(data[i + 2 : i + 6])
            and data[i + 6 : i + 8] == b"\\u"
            and _low(data[i + 8 : i + 12])
        ):
            out += data[i : i + 12]  # a pair
            i += 12
        elif _high(data[i + 2 : i + 6]) or _low(data[i + 2 : i + 6]):
            out += b"\\ufffd"
            i += 6
        else:
            out += b"\\u"  # any other \\uXXXX: its hex digits follow as they are
            i += 2
    return bytes(out)


def _unit(hex4: bytes) -> int | None:
    try:
        return int(hex4, 16) if len(hex4) == 4 and hex4.isalnum() else None
    except ValueError:
        return None


def _high(hex4: bytes) -> bool:
    unit = _unit(hex4)
    return unit is not None and 0xD800 <= unit <= 0xDBFF


def _low(hex4: bytes) -> bool:
    unit = _unit(hex4)
    return unit is not None and 0xDC00 <= unit <= 0xDFFF


# Backslashes, "u", and hex digits that make high, low and other code units.
tokens = st.sampled_from([b"\\", b"\\", b"u", b"d", b"D", b"8", b"b", b"c", b"F", b"0", b"4", b'"'])
streams = st.lists(tokens, max_size=80).map(b"".join)


@given(streams, st.lists(st.integers(1, 13), max_size=20))
def test_rewriting_agrees_with_reading_each_escape_in_turn(data: bytes, cuts: list[int]) -> None:
    escapes, out, at = SurrogateEscapes(), b"", 0
    for size in cuts:  # any chunking: a pair or a run of backslashes split anywhere
        out += escapes.feed(data[at : at + size])
        at += size
    out += escapes.feed(data[at:]) + escapes.flush()
    assert out == reference(data)


def test_long_runs_of_backslashes_keep_their_parity() -> None:
    escapes = SurrogateEscapes()
    data = b"\\" * 100_000 + b"ud800" + b"\\" * 99_999 + b"ud800"
    out = escapes.feed(data) + escapes.flush()
    assert out == b"\\" * 100_000 + b"ud800" + b"\\" * 99_999 + b"ufffd"


@pytest.fixture(params=BACKENDS)
def parser(request):
    return backend(request.param)


@pytest.mark.parametrize(
    ("escaped", "text"),
    [
        (rb"x\ud800\u0041y", "x\ufffdAy"),  # yajl: U+10041
        (rb"x\ud800", "x\ufffd"),  # yajl: "?"
        (rb"\udce9", "\ufffd"),  # yajl: invalid UTF-8, a dropped connection
        (rb"\ude00\ud83d", "\ufffd\ufffd"),
        (rb"\ud83d\ud83d\ude00", "\ufffd\U0001f600"),
        (rb"\ud83d\ude00", "\U0001f600"),  # a pair is one character
        (rb"\\ud800", "\\ud800"),  # an escaped backslash, then text
        (rb"\\\ud800\udc00", "\\\U00010000"),
    ],
)
def test_both_backends_read_lone_surrogates_as_u_fffd(parser, escaped: bytes, text: str) -> None:
    data = b'{"Body":"' + escaped + b'"}'
    for size in (len(data), 1, 7):  # whole, byte by byte, in pieces
        decoder = Decoder(backend=parser)
        got = [o for i in range(0, len(data), size) for o in decoder.feed(data[i : i + size])]
        assert got + decoder.feed_eof() == [{"Body": text}]


def test_the_hashed_id_is_over_u_fffd(parser) -> None:
    """The ID a sender computes over U+FFFD + "A" (as Go reads the escapes) is valid here;
    one over U+10041 (as yajl alone read them) is not."""
    stamp = 1_700_000_000_000
    good = hashed_id(ADDR, "x\ufffdAy", stamp)
    bad = hashed_id(ADDR, "x\U00010041y", stamp)
    for id_, check in ((good, IdCheck.VALID), (bad, IdCheck.MISMATCH)):
        data = b'{"ID":"%s","Addr":"%s","Body":"x\\ud800\\u0041y","Timestamp":%d}' % (
            id_.encode(),
            ADDR.encode(),
            stamp,
        )
        (obj,) = Decoder(backend=parser).feed(data)
        assert check_id(Message.from_wire(obj)) is check
