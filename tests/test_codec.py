"""The sans-IO codec: chunking independence, round trips, every violation, the Go bytes."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

import ijson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whisper.codec import (
    RENEW_AFTER,
    SLICE,
    Decoder,
    Violation,
    decode_all,
    encode,
    encode_object,
    well_formed,
)
from whisper.message import Message

BACKENDS = ["yajl2_c", "python"]


def backend(name: str):
    try:
        return ijson.get_backend(name)
    except ImportError:
        pytest.skip(f"ijson backend {name} not available")


@pytest.fixture(params=BACKENDS)
def parser(request):
    return backend(request.param)


def feed_chunks(data: bytes, cuts: list[int], **kw) -> list:
    decoder = Decoder(**kw)
    out: list = []
    last = 0
    for cut in sorted(set(cuts)):
        out += decoder.feed(data[last:cut])
        last = cut
    out += decoder.feed(data[last:])
    out += decoder.feed_eof()
    return out


SAMPLE = (
    b'{"ID":"1","Addr":"127.0.0.1:1","Body":"h\\u00e9llo \xe2\x9c\x93 \\"q\\" \\\\"}'
    b'{"ID":"2","Addr":"a:2","Body":"x"}\n'
    b'  \t\r\n{\n  "ID": "3",\n  "Addr": "a:3",\n  "Body": "pretty",\n  "Timestamp": 5,\n'
    b'  "Ext": {"list": [1, 2.5, true, null, "\xf0\x9f\x98\x80"]}\n}'
)
EXPECTED = [
    {"ID": "1", "Addr": "127.0.0.1:1", "Body": 'héllo ✓ "q" \\'},
    {"ID": "2", "Addr": "a:2", "Body": "x"},
    {
        "ID": "3",
        "Addr": "a:3",
        "Body": "pretty",
        "Timestamp": 5,
        "Ext": {"list": [1, 2.5, True, None, "😀"]},
    },
]


def test_whole(parser):
    decoder = Decoder(backend=parser)
    assert decoder.feed(SAMPLE) + decoder.feed_eof() == EXPECTED


def test_byte_by_byte(parser):
    decoder = Decoder(backend=parser)
    out = []
    for i in range(len(SAMPLE)):
        out += decoder.feed(SAMPLE[i : i + 1])
    assert out + decoder.feed_eof() == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(SAMPLE)), max_size=40))
def test_any_chunking(cuts):
    assert feed_chunks(SAMPLE, cuts) == EXPECTED


def test_objects_arrive_as_soon_as_complete():
    decoder = Decoder()
    assert decoder.feed(b'{"a":1}{"b"') == [{"a": 1}]
    assert decoder.in_message
    assert decoder.feed(b":2}") == [{"b": 2}]
    assert not decoder.in_message


def test_go_reference_bytes(go_wire):
    whole = decode_all(go_wire)
    assert len(whole) == 5
    assert all(isinstance(m, dict) for m in whole)
    messages = [Message.from_wire(m) for m in whole]
    assert [m.nick for m in messages] == ["alice"] * 4 + [""]
    assert messages[1].body == 'x<y> & "q" \\ héllo ✓ 日本 tab\there'
    assert messages[2].body == " leading and trailing spaces  "
    assert messages[3].body == "a" * 300
    assert messages[4].id == "relay-2" and messages[4].sender == "127.0.0.1:1"
    assert messages[0].timestamp == 1795265846 and messages[0].timestamp_ms == 1795265846000
    assert messages[4].timestamp_ms is None  # Go relays a missing Timestamp as 0
    byte_by_byte = feed_chunks(go_wire, list(range(len(go_wire))))
    assert byte_by_byte == whole


@settings(max_examples=30)
@given(st.lists(st.integers(min_value=0, max_value=912), max_size=60))
def test_go_reference_any_chunking(go_wire, cuts):
    assert feed_chunks(go_wire, cuts) == decode_all(go_wire)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63 - 1), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)


@given(
    st.lists(
        st.fixed_dictionaries(
            {"ID": st.text(min_size=1), "Addr": st.text(min_size=1), "Body": st.text(min_size=1)},
            optional={"Nick": st.text(), "Timestamp": st.integers(0, 2**62), "X": json_values},
        ),
        min_size=1,
        max_size=4,
    ),
    st.lists(st.integers(min_value=0, max_value=4000), max_size=10),
)
def test_round_trip(objects, cuts):
    data = b"".join(encode_object(o) for o in objects)
    decoded = feed_chunks(data, [c for c in cuts if c <= len(data)])
    assert decoded == objects
    assert [Message.from_wire(d) for d in decoded] == [Message.from_wire(o) for o in objects]


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("\ud800", "\ufffd"),
        ("caf\udce9", "caf\ufffd"),
        ("\udfff\ud800x", "\ufffd\ufffdx"),
        ("\ud83d\ude00", "\U0001f600"),
        ("plain", "plain"),
    ],
)
def test_encoding_never_writes_invalid_utf8(text, read):
    """A lone surrogate (a Latin-1 byte typed into the terminal UI, -nick from argv, the pure
    backend's decoding of "\\ud800") went out as invalid UTF-8: a violation to every peer.
    (Escaped, "\\udce9" is one to yajl too.)  It goes out as U+FFFD, as well_formed says."""
    assert well_formed(text) == read
    data = encode_object({"Body": text, text: [text]})
    data.decode("utf-8")  # strict
    assert decode_all(data) == [{"Body": read, read: [read]}]  # no Violation: not dropped


def test_encode_is_compact_json_line():
    message = Message.create(id="i", addr="1.2.3.4:5", body="é<x>", nick="n", timestamp=7)
    data = encode(message)
    assert (
        data
        == (
            '{"ID":"i","Addr":"1.2.3.4:5","Body":"é<x>","Nick":"n","omitempty":"n","Timestamp":7}\n'
        ).encode()
    )
    assert json.loads(data) == dict(message.fields)
    assert decode_all(data) == [dict(message.fields)]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"a":1,}', "malformed JSON"),
        (b'{"a" 1}', "malformed JSON"),
        (b"}", "malformed JSON"),
        (b'{"a":"\xff"}', "malformed JSON"),  # invalid UTF-8
        (b'{"a":"\xc3"}', "malformed JSON"),  # truncated UTF-8 sequence
        (b'{"a":"\xed\xa0\x80"}', "malformed JSON"),  # UTF-8 encoded surrogate
        (b'{"a":1e999}', "malformed JSON"),  # overflows a double
        (b'{"a":99999999999999999999}', "malformed JSON"),  # overflows int64
        (b"[1]", "not an object"),
        (b'"text" ', "not an object"),
        (b"42 ", "not an object"),
        (b"null ", "not an object"),
        (b'{"a":1', "closed in the middle"),
        (b'{"a":' + b"[" * 40 + b"]" * 40 + b"}", "nested deeper"),
        (b'{"a":[' + b"0," * 20000 + b"0]}", "JSON values"),
    ],
)
def test_violations(parser, data, reason):
    decoder = Decoder(backend=parser)
    events = decoder.feed(data) + decoder.feed_eof()
    assert events and isinstance(events[-1], Violation), events
    if parser.backend_name == "yajl2_c" or "JSON" not in reason:
        assert reason in events[-1].reason
    else:  # the pure-Python backend words some errors differently; it still reports them
        assert events[-1].reason


def test_violation_keeps_earlier_objects_and_kills_decoder():
    decoder = Decoder()
    events = decoder.feed(b'{"ok":1}[')
    assert events[0] == {"ok": 1} and isinstance(events[1], Violation)
    with pytest.raises(RuntimeError):
        decoder.feed(b"{}")
    assert decoder.feed_eof() == []


def test_depth_limit_is_linear_not_quadratic():
    # 64 KiB of "[" after an object key: refused at depth 33, not parsed to the end.
    decoder = Decoder()
    events = decoder.feed(b'{"a":' + b"[" * 65536)
    assert isinstance(events[-1], Violation) and "nested" in events[-1].reason


def test_depth_at_limit_is_accepted():
    nested = b'{"a":' + b"[" * 31 + b"]" * 31 + b"}"
    assert decode_all(nested, max_depth=32) == [json.loads(nested)]


def test_size_limit_exact_bounds():
    limit = 64 * 1024

    def message(total: int) -> bytes:
        head, tail = b'{"Body":"', b'"}'
        return head + b"x" * (total - len(head) - len(tail)) + tail

    fits = message(limit)
    assert decode_all(fits, max_size=limit) == [json.loads(fits)]
    assert decode_all(fits * 3, max_size=limit) == [json.loads(fits)] * 3
    too_big = message(limit + 2 * SLICE + 1)
    assert "larger than" in decode_all(too_big, max_size=limit)[-1].reason


def test_oversized_refused_before_it_is_buffered():
    # A message that never ends: refused once the bound is passed, whatever the chunking.
    decoder = Decoder(max_size=100_000)
    events: list = []
    fed = 0
    chunk = b'{"Body":"' + b"x" * 4000
    while not events:
        events = decoder.feed(chunk)
        chunk = b"x" * 4000
        fed += 4000
    assert "larger than" in events[-1].reason
    assert fed <= 100_000 + 2 * SLICE + 4000


def test_whitespace_only_stream_and_empty_stream_are_clean():
    assert decode_all(b"") == []
    assert decode_all(b" \n\t\r ") == []


def test_huge_whitespace_between_messages_counts_toward_size():
    events = decode_all(b"{}" + b" " * 200_000 + b"{}", max_size=100_000)
    assert events[0] == {} and isinstance(events[-1], Violation)


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63 - 1)])
def test_integer_range_accepted(parser, value):
    data = b'{"a":%d} ' % value
    assert Decoder(backend=parser).feed(data) == [{"a": value}]


@pytest.mark.parametrize("value", [2**63, -(2**63), 10**30])
def test_integer_range_refused_by_both_backends(parser, value):
    events = Decoder(backend=parser).feed(b'{"a":%d} ' % value)
    assert isinstance(events[-1], Violation)


def test_values_counted_once_each():
    # The message object, the list and 4094 empty objects: exactly 4096 values.
    at_limit = b'{"a":[' + b",".join([b"{}"] * 4094) + b"]}"
    assert decode_all(at_limit, max_values=4096) == [json.loads(at_limit)]
    over = b'{"a":[' + b",".join([b"{}"] * 4095) + b"]}"
    assert "JSON values" in decode_all(over, max_values=4096)[-1].reason


def test_duplicate_keys_last_wins():
    assert decode_all(b'{"a":1,"a":2}') == [{"a": 2}]


# -- what a message in progress holds (the receive budget) -----------------------------------

EMOJI_STRING = "x" * 1_000_000 + "\U0001f600"  # Python holds it at 4 bytes a character


def test_held_counts_decoded_size_not_wire_bytes(parser):
    """An unfinished message whose ~1 MB string has one emoji: 1 MB on the wire, 4 MB in
    memory.  126 such connections held 665 MB."""
    unfinished = ('{"ID":"x","Body":"' + EMOJI_STRING + '"').encode()
    decoder = Decoder(backend=parser)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        assert decoder.feed(unfinished) == []
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert decoder.in_message
    assert decoder.held >= sys.getsizeof(EMOJI_STRING) + len(unfinished) > 5_000_000
    assert decoder.held >= grown  # an upper bound on what Python holds for it
    decoder.close()


def test_held_of_plain_text_is_not_charged_four_times(parser):
    unfinished = b'{"ID":"x","Body":"' + b"x" * 1_000_000 + b'"'
    decoder = Decoder(backend=parser)
    decoder.feed(unfinished)
    # the string, and the bytes in the parser (2x for yajl, 8x for the pure-Python backend)
    assert decoder.held < (decoder.buffer_cost + 1.5) * len(unfinished)
    decoder.close()


def test_held_mid_string_counts_the_bytes_in_the_parser(parser):
    decoder = Decoder(backend=parser)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        decoder.feed(b'{"Body":"' + "\U0001f600".encode() * 125_000)  # no string yet
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert decoder.held >= max(500_000, grown)  # the bytes in yajl; decoded text in Python's
    decoder.close()


def test_nothing_is_held_once_the_message_is_complete(parser):
    decoder = Decoder(backend=parser)
    out = decoder.feed(('{"Body":"' + EMOJI_STRING + '"}\n').encode())
    assert out == [{"Body": EMOJI_STRING}]
    assert decoder.held <= 6 * SLICE  # the parser was renewed; what the last slice could hold
    decoder.close()
    assert decoder.held == 0


BIG = {"ID": "big", "Body": "y" * (RENEW_AFTER + 3 * SLICE)}


@pytest.mark.parametrize("name", BACKENDS)
@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2 * (len(SAMPLE) + RENEW_AFTER)), max_size=8))
def test_renewing_the_parser_after_a_big_message_changes_nothing(name, cuts):
    """The parser is replaced after each big message (its buffers never shrink); however the
    input is cut, the same objects come out."""
    big = encode_object(BIG)
    data = big + SAMPLE + big.rstrip(b"\n") + SAMPLE
    decoded = feed_chunks(data, [c for c in cuts if c <= len(data)], backend=backend(name))
    assert decoded == [BIG, *EXPECTED, BIG, *EXPECTED]


@pytest.mark.parametrize(
    ("head", "tail"),
    [(b' "te', b'xt" '), (b" 4", b"2 "), (b" tr", b"ue "), (b" [", b"1] "), (b' "a}', b'" ')],
)
def test_a_top_level_value_after_a_big_message_is_still_a_violation(parser, head, tail):
    """Where the parser would be renewed it is inside a top-level value that is not an
    object: that is the violation it was going to be, not a fresh start."""
    decoder = Decoder(backend=parser)
    events = decoder.feed(encode_object(BIG).rstrip(b"\n") + head)
    if not events or not isinstance(events[-1], Violation):
        events += decoder.feed(tail + b'{"ID":"after","Body":"x"}') + decoder.feed_eof()
    assert events[0] == BIG and isinstance(events[-1], Violation)
    assert {"ID": "after", "Body": "x"} not in events


def test_an_idle_connection_keeps_no_parser_buffer_after_a_big_message():
    """yajl's buffers keep the capacity of the longest token they held: 50 connections that
    each sent a 1 MB message kept 50 MB.  Measured in a fresh process (RSS)."""
    script = """
import gc
from whisper.codec import Decoder, encode_object
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
data = encode_object({"Body": "x" * 1_000_000})
decoders = []
base = rss()
for _ in range(50):
    decoders.append(Decoder())
    assert len(decoders[-1].feed(data)) == 1
gc.collect()
print(rss() - base)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert int(out.stdout) < 10_000_000  # was about 50 MB: 1 MB a connection
