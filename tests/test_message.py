from __future__ import annotations

import pytest

from whisper.ids import IdCheck, check_id, hashed_id, random_id
from whisper.message import InvalidMessage, Message, NotChat

BASE = {"ID": "x1", "Addr": "127.0.0.1:5", "Body": "hi"}


def test_minimal_message():
    m = Message.from_wire(dict(BASE))
    assert (m.id, m.addr, m.body, m.nick, m.timestamp) == ("x1", "127.0.0.1:5", "hi", "", None)
    assert m.sender == "127.0.0.1:5"


@pytest.mark.parametrize("body", [None, "", 5, ["x"], {"a": 1}, True])
def test_no_string_body_is_not_chat(body):
    obj = dict(BASE)
    if body is None:
        del obj["Body"]
    else:
        obj["Body"] = body
    with pytest.raises(NotChat):
        Message.from_wire(obj)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ID", 5),
        ("ID", ""),
        ("ID", None),
        ("Addr", ["x"]),
        ("Addr", ""),
        ("Nick", 3),
        ("omitempty", False),
        ("Timestamp", 1.5),
        ("Timestamp", "1795265846"),
        ("Timestamp", True),
        ("Timestamp", -1),
    ],
)
def test_wrong_types_are_invalid(key, value):
    obj = dict(BASE)
    obj[key] = value
    with pytest.raises(InvalidMessage):
        Message.from_wire(obj)


def test_a_wrong_type_is_invalid_beside_a_good_nick():
    """PROTOCOL.md §2.1: any of the keys with the wrong type, though Nick wins over omitempty."""
    with pytest.raises(InvalidMessage):
        Message.from_wire({**BASE, "Nick": "a", "omitempty": 5})


def test_missing_addr_is_invalid():
    obj = dict(BASE)
    del obj["Addr"]
    with pytest.raises(InvalidMessage):
        Message.from_wire(obj)


def test_nick_prefers_nick_then_go_key():
    assert Message.from_wire({**BASE, "Nick": "a", "omitempty": "b"}).nick == "a"
    assert Message.from_wire({**BASE, "Nick": "", "omitempty": "b"}).nick == "b"
    assert Message.from_wire({**BASE, "omitempty": "b"}).sender == "b"


def test_timestamps_seconds_and_milliseconds():
    assert Message.from_wire({**BASE, "Timestamp": 1795265846}).timestamp_ms == 1795265846000
    assert Message.from_wire({**BASE, "Timestamp": 1795265846123}).timestamp_ms == 1795265846123
    assert Message.from_wire({**BASE, "Timestamp": 0}).timestamp_ms is None


def test_unknown_keys_kept_in_order():
    obj = {"Zed": [1, {"b": None}], **BASE, "FileType": "image/gif"}
    m = Message.from_wire(obj)
    assert list(m.fields) == ["Zed", "ID", "Addr", "Body", "FileType"]
    assert m.extra == {"Zed": [1, {"b": None}], "FileType": "image/gif"}


def test_create_sends_nick_under_both_keys():
    m = Message.create(id="i", addr="a:1", body="b", nick="phil", timestamp=3, extra={"X": 1})
    assert dict(m.fields) == {
        "ID": "i",
        "Addr": "a:1",
        "Body": "b",
        "Nick": "phil",
        "omitempty": "phil",
        "Timestamp": 3,
        "X": 1,
    }
    assert Message.from_wire(dict(m.fields)) == m
    with pytest.raises(ValueError):
        Message.create(id="i", addr="a:1", body="")
    with pytest.raises(ValueError):
        Message.create(id="i", addr="a:1", body="b", extra={"Body": "x"})


def test_hashed_id_matches_spec_example():
    # PROTOCOL.md §3.2
    assert hashed_id("127.0.0.1:55555", "hello", 1795265846123) == (
        "hash:sha256:921fbd60ff7885d1c6b9afdac13ee7e4ab2aa64ca92f452e0a473fd93a7ed5ac"
    )


def test_check_id():
    good = hashed_id("a:1", "héllo", 17)
    m = Message.create(id=good, addr="a:1", body="héllo", timestamp=17)
    assert check_id(m) is IdCheck.VALID
    upper = Message.create(
        id="hash:sha256:" + good[12:].upper(), addr="a:1", body="héllo", timestamp=17
    )
    assert check_id(upper) is IdCheck.VALID
    assert check_id(Message.create(id=good, addr="a:1", body="tampered", timestamp=17)) is (
        IdCheck.MISMATCH
    )
    assert check_id(Message.create(id=good, addr="a:1", body="héllo", timestamp=18)) is (
        IdCheck.MISMATCH
    )
    assert check_id(Message.create(id="hash:sha256:zz", addr="a:1", body="x")) is IdCheck.MISMATCH
    assert check_id(Message.create(id="hash:md5:abc", addr="a:1", body="x")) is IdCheck.OPAQUE
    assert check_id(Message.create(id=random_id(), addr="a:1", body="x")) is IdCheck.OPAQUE


def test_hash_without_timestamp_uses_empty_string():
    no_ts = hashed_id("a:1", "x", None)
    assert check_id(Message.create(id=no_ts, addr="a:1", body="x")) is IdCheck.VALID
    assert check_id(Message.create(id=no_ts, addr="a:1", body="x", timestamp=0)) is (
        IdCheck.MISMATCH
    )


def test_random_ids_look_like_go():
    ids = {random_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
