"""``History.add_shown`` (whisper/store/db.py): messages stored from the relay's wire bytes,
parsed by SQLite, come back exactly as those stored through ``Record``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.store_helpers import message
from whisper import codec
from whisper.events import Delivered
from whisper.files import RejectedFile
from whisper.message import Message
from whisper.store import History, Record


def shown(m: Message, **kw) -> Delivered:
    return Delivered(m, data=codec.encode(m), **kw)


def stored_as(h: History) -> list[tuple]:
    return [(s.received_at, dict(s.message.fields), s.own, s.history, s.file) for s in h.since(0)]


def without_contents(rows: list[tuple]) -> list[tuple]:
    return [(a, {k: v for k, v in f.items() if k != "FileContents"}, *r) for a, f, *r in rows]


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def wire_objects(draw) -> dict:
    obj = {"ID": draw(text.filter(bool)), "Addr": draw(text.filter(bool))}
    obj["Body"] = draw(text.filter(bool))
    for key in ("Nick", "omitempty"):
        if draw(st.booleans()):
            obj[key] = draw(st.sampled_from(["", "al", "bob"]))
    if draw(st.booleans()):
        obj["Timestamp"] = draw(st.integers(0, 2**62))
    extra = st.dictionaries(st.sampled_from(["X", "Y", "FileContents"]), json_values)
    obj.update(draw(extra))
    return obj


@settings(max_examples=60, deadline=None)
@given(st.lists(wire_objects(), min_size=1, max_size=6, unique_by=lambda o: o["ID"]))
def test_wire_bytes_are_stored_as_the_record_of_the_message(tmp_path_factory, objects):
    folder = tmp_path_factory.mktemp("h")
    messages = [Message.from_wire(o) for o in objects]
    with History.open(folder / "wire") as wire, History.open(folder / "rows") as rows:
        assert wire.add_shown([(5.5, [shown(m) for m in messages])]) == len(messages)
        rows.add_messages([Record(m, 5.5) for m in messages])
        assert stored_as(wire) == without_contents(stored_as(rows))


def test_every_kind_of_chunk_is_stored_in_the_order_shown_and_only_once(tmp_path):
    plain = [message(f"plain {i}") for i in range(3)]
    nul = Message.create(id="n", addr="a:1", body="before\x00after", nick="x")
    mine, old, bare = message("mine"), message("old"), message("no bytes")
    with_file = message("[file] x", FileName="x", FileContents="!!")
    chunks = [
        (1.0, [shown(m) for m in plain]),
        (2.0, [shown(mine, own=True), shown(old, history=True)]),  # mixed flags: rows
        (3.0, [shown(nul)]),  # a NUL: SQLite's JSON would cut the body there
        (4.0, [Delivered(bare)]),  # no wire bytes
        (5.0, [shown(with_file, file=RejectedFile("bad base64"))]),
        (6.0, [shown(old, history=True)]),  # stored already
    ]
    with History.open(tmp_path / "h") as h:
        assert h.add_shown(chunks) == 8
        got = h.since(0)
        assert [s.message.body for s in got] == [
            *(m.body for m in plain),
            "mine",
            "old",
            "before\x00after",
            "no bytes",
            "[file] x",
        ]
        assert [s.received_at for s in got] == [1.0] * 3 + [2.0, 2.0, 3.0, 4.0, 5.0]
        assert [(s.own, s.history) for s in got[3:5]] == [(True, False), (False, True)]
        assert got[-1].file is not None and got[-1].file.rejected == "bad base64"
        assert "FileContents" not in got[-1].message.fields
        assert h.add_shown(chunks) == 0
        assert h.add_shown([(7.0, [shown(m, history=True) for m in plain])]) == 0
        assert [s.seq for s in h.search("plain")] == [3, 2, 1]
        assert h.add_shown([]) == 0 and h.add_shown([(8.0, [])]) == 0
