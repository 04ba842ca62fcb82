"""The history store (whisper/store/db.py): files, messages, cursors, retention, peers, pins."""

from __future__ import annotations

import os
import stat
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.store_helpers import file_record, record, records
from whisper.message import Message
from whisper.store import History, Record
from whisper.store.dbfile import default_path


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_history_is_readable_only_by_its_owner(tmp_path):
    path = tmp_path / "data" / "messages.sqlite3"
    with History.open(path) as h:
        h.add_messages(records(3))
        assert mode(path.parent) == 0o700
        for p in path.parent.iterdir():  # the database, -wal, -shm and .lock
            assert mode(p) == 0o600, p
        assert {p.name for p in path.parent.iterdir()} >= {
            "messages.sqlite3",
            "messages.sqlite3-wal",
            "messages.sqlite3-shm",
            "messages.sqlite3.lock",
        }


def test_an_existing_history_open_to_others_is_narrowed(tmp_path):
    path = tmp_path / "h.sqlite3"
    History.open(path).close()
    path.chmod(0o644)
    with History.open(path):
        assert mode(path) == 0o600


def test_default_path_is_in_the_user_data_directory():
    assert default_path().name == "messages.sqlite3"
    assert default_path().parent.name == "whisper-p2p"
    assert default_path("../bob x").name == "messages-___bob_x.sqlite3"


def test_adding_is_idempotent_by_message_id(tmp_path):
    batch = records(5)
    with History.open(tmp_path / "h") as h:
        assert h.add_messages(batch) == 5
        assert h.add_messages(batch) == 0
        assert h.add_messages([*batch[:2], record("new")]) == 1
        assert h.count() == 6
        assert h.search("message", limit=100)[-1].message.body == "message 0"
        assert len(h.search("message", limit=100)) == 5  # indexed once each


def test_messages_keep_their_fields_and_flags(tmp_path):
    go = Message.from_wire({"ID": "go1", "Addr": "10.0.0.7:5", "Body": "hi", "omitempty": "gopher"})
    both = Message.from_wire(
        {
            "ID": "x",
            "Addr": "a:1",
            "Body": "b",
            "Nick": "n",
            "omitempty": "other",
            "Ext": {"k": [1]},
        }
    )
    stored = [
        record("mine", own=True),
        record("replayed", history=True, channel="go"),
        record("secret", direct=True),
        Record(go, 5.0),
        Record(both, 6.0),
        file_record(),
    ]
    with History.open(tmp_path / "h") as h:
        h.add_messages(stored)
        back = h.since(0)
    assert [s.seq for s in back] == [1, 2, 3, 4, 5, 6]
    for r, s in zip(stored, back, strict=True):
        assert s.message == r.message
        assert (s.own, s.history, s.direct, s.channel) == (r.own, r.history, r.direct, r.channel)
        assert s.received_at == r.received_at
        expected = {k: v for k, v in r.message.fields.items() if k != "FileContents"}
        assert dict(s.message.fields) == expected
    assert back[5].file == stored[5].file
    assert "FileContents" not in back[5].message.fields  # a file's bytes are not history


@settings(max_examples=40, deadline=None)
@given(
    body=st.text(min_size=1),
    nick=st.text(),
    extra=st.dictionaries(
        st.text().filter(lambda k: k not in {"ID", "Addr", "Body", "Nick", "omitempty"}),
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
        max_size=3,
    ),
)
def test_any_message_round_trips(tmp_path_factory, body, nick, extra):
    extra.pop("Timestamp", None)
    extra.pop("FileContents", None)
    m = Message.create(id="id", addr="a:1", body=body, nick=nick, timestamp=7, extra=extra)
    with History.open(tmp_path_factory.mktemp("h") / "h") as h:
        h.add_messages([Record(m, 1.0)])
        (s,) = h.since(0)
    clean = body.encode("utf-8", "replace").decode()  # a lone surrogate cannot be stored
    assert s.message.body == clean
    if clean == body and nick.encode("utf-8", "replace").decode() == nick:
        assert dict(s.message.fields) == dict(m.fields)


def test_page_and_since_walk_by_our_sequence(tmp_path):
    with History.open(tmp_path / "h") as h:
        h.add_messages(records(25))
        last = h.page(limit=10)
        assert [s.seq for s in last] == list(range(16, 26))
        older = h.page(before=last[0].seq, limit=10)
        assert [s.seq for s in older] == list(range(6, 16))
        assert [s.seq for s in h.page(before=older[0].seq, limit=10)] == [1, 2, 3, 4, 5]
        assert h.page(before=1) == []
        assert [s.seq for s in h.since(20, limit=3)] == [21, 22, 23]
        assert h.since(25) == []
        assert h.find(last[0].message.id) == last[0]
        assert h.find("no such id") is None


def test_sequence_numbers_are_never_reused_after_pruning(tmp_path):
    with History.open(tmp_path / "h") as h:
        h.add_messages(records(3, at=100.0))
        assert h.prune(older_than=200.0) == 3
        h.add_messages([record("later", at=300.0)])
        assert [s.seq for s in h.since(0)] == [4]


def test_prune_deletes_only_what_is_older_and_unindexes_it(tmp_path):
    with History.open(tmp_path / "h") as h:
        h.add_messages(records(30, "old", at=1000.0) + records(20, "new", at=2000.0))
        assert h.prune(older_than=1500.0) == 30
        assert h.count() == 20
        assert h.search("old") == []
        assert len(h.search("new", limit=100)) == 20
        assert h.prune(older_than=1500.0) == 0
        h._conn.execute("INSERT INTO messages_text (messages_text) VALUES ('integrity-check')")


def test_prune_works_in_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr("whisper.store.db.PRUNE_CHUNK", 7)
    with History.open(tmp_path / "h") as h:
        h.add_messages(records(50, at=1.0) + records(5, "kept", at=10.0))
        assert h.prune(older_than=5.0) == 50
        assert [s.message.body for s in h.since(0)] == [f"kept {i}" for i in range(5)]


def test_recent_for_backlog_is_the_newest_fresh_messages_oldest_first(tmp_path):
    now = time.time()
    now_ms = int(now * 1000)
    with History.open(tmp_path / "h") as h:
        h.add_messages(
            [
                record("stale", ts=now_ms - 600_000, at=now - 600),
                record("fresh seconds", ts=int(now) - 100, at=now - 100),  # a Go peer's
                Record(Message.create(id="nots", addr="a:1", body="no timestamp"), now - 50),
                *[record(f"fresh {i}", ts=now_ms - 60_000 + i, at=now - 60) for i in range(5)],
            ]
        )
        got = h.recent_for_backlog(4, max_age=480, now=now)
        assert [s.message.body for s in got] == [f"fresh {i}" for i in range(1, 5)]
        got = h.recent_for_backlog(50, max_age=480, now=now)
        assert [s.message.body for s in got] == ["fresh seconds"] + [f"fresh {i}" for i in range(5)]


def test_known_peers_most_recently_successful_first(tmp_path):
    with History.open(tmp_path / "h") as h:
        h.peer_linked("10.0.0.1:1", 100.0)
        h.peer_linked("10.0.0.2:2", 300.0)
        h.peer_linked("10.0.0.3:3", 200.0)
        h.peer_failed("10.0.0.2:2", 400.0)
        h.peer_failed("10.9.9.9:9", 400.0)  # never linked: not remembered
        peers = h.known_peers()
        assert [p.addr for p in peers] == ["10.0.0.2:2", "10.0.0.3:3", "10.0.0.1:1"]
        assert (peers[0].failures, peers[0].last_seen, peers[0].last_success) == (1, 400.0, 300.0)
        assert [p.addr for p in h.known_peers(limit=2)] == ["10.0.0.2:2", "10.0.0.3:3"]
        h.peer_linked("10.0.0.1:1", 500.0)
        assert h.known_peers()[0].addr == "10.0.0.1:1"
        assert h.known_peers()[0].failures == 0
        h.forget_peer("10.0.0.1:1")
        assert "10.0.0.1:1" not in [p.addr for p in h.known_peers()]
    with History.open(tmp_path / "h") as h:  # they survive a restart
        assert [p.addr for p in h.known_peers()] == ["10.0.0.2:2", "10.0.0.3:3"]


def test_known_peers_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr("whisper.store.db.MAX_PEERS", 5)
    with History.open(tmp_path / "h") as h:
        for i in range(12):
            h.peer_linked(f"10.0.0.{i}:1", float(i))
        assert [p.addr for p in h.known_peers(100)] == [f"10.0.0.{i}:1" for i in range(11, 6, -1)]


def test_a_nick_is_pinned_to_its_first_key(tmp_path):
    with History.open(tmp_path / "h") as h:
        assert h.pinned("bob") is None
        assert h.pin("bob", "key1", 1.0) == "key1"
        assert h.pin("bob", "key2", 2.0) == "key1"
        assert h.pinned("bob") == "key1"


def test_a_lone_surrogate_is_stored_replaced_not_refused(tmp_path):
    m = Message.create(id="s", addr="a:1", body="bad \udc80 text", nick="x\ud800")
    with History.open(tmp_path / "h") as h:
        assert h.add_messages([Record(m, 1.0), record("fine")]) == 2
        assert h.since(0)[0].message.body == "bad ? text"


def test_limits_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr("whisper.store.db.MAX_LIMIT", 3)
    with History.open(tmp_path / "h") as h:
        h.add_messages(records(5))
        assert len(h.page(limit=1_000_000)) == 3
        assert len(h.since(0, limit=-5)) == 0


def test_a_nul_in_a_string_is_kept(tmp_path):
    nul = Message.create(id="n", addr="a:1", body="before\x00after", nick="ni\x00ck")
    with History.open(tmp_path / "h") as h:
        assert h.add_messages([record("plain"), Record(nul, 1.0)]) == 2
        assert h.add_messages([record("alone")]) == 1
        assert [s.message.body for s in h.since(0)] == ["plain", "before\x00after", "alone"]
        assert h.since(0)[1].message.nick == "ni\x00ck"
