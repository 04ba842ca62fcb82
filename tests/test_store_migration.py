"""Schema versions: a v1 history (made by hand, as v1 wrote it) is migrated on open."""

from __future__ import annotations

import json
import sqlite3

from tests.store_helpers import message
from whisper.message import Message
from whisper.store import History, Record
from whisper.store.schema import _V1, APPLICATION_ID, VERSION, migrate


def make_v1(path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(_V1)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    rows = [
        (3, 100.0, "id-a", "10.0.0.1:1", "alice", "hello there", 1700000000, 8 | 16, None),
        (7, 200.0, "id-b", "10.0.0.2:2", "bob", "general kenobi", 1700000001000, 1 | 8, None),
        (9, 300.0, "id-c", "10.0.0.3:3", "", "a file", None, 2, json.dumps({"FileName": "x"})),
    ]
    conn.executemany(
        "INSERT INTO messages (seq, received_at, id, addr, nick, body, timestamp, flags, extra)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("INSERT INTO peers VALUES ('10.0.0.1:1', 150.0), ('10.0.0.2:2', 250.0)")
    conn.close()


def test_v1_is_migrated_keeping_every_message_and_peer(tmp_path):
    path = tmp_path / "h"
    make_v1(path)
    with History.open(path) as h:
        assert h._conn.execute("PRAGMA user_version").fetchone()[0] == VERSION == 4
        got = h.since(0)
        assert [s.seq for s in got] == [3, 7, 9]
        a, b, c = got
        assert dict(a.message.fields) == {
            "ID": "id-a",
            "Addr": "10.0.0.1:1",
            "Body": "hello there",
            "Nick": "alice",
            "omitempty": "alice",
            "Timestamp": 1700000000,
        }
        assert b.own and not b.history and c.history
        assert c.message.fields["FileName"] == "x" and c.channel is None and c.file is None
        assert [s.seq for s in h.search("kenobi")] == [7]  # the index was filled
        assert h.find("id-c").seq == 9
        assert [(p.addr, p.last_success, p.failures) for p in h.known_peers()] == [
            ("10.0.0.2:2", 250.0, 0),
            ("10.0.0.1:1", 150.0, 0),
        ]
        # sequence numbers go on after the migrated ones, and IDs stay unique
        assert h.add_messages([Record(message("new one"), 400.0)]) == 1
        assert h.since(9)[0].seq == 10
        dup = Message.from_wire({"ID": "id-a", "Addr": "x:1", "Body": "y"})
        assert h.add_messages([Record(dup, 1.0)]) == 0
        h._conn.execute("INSERT INTO messages_text (messages_text) VALUES ('integrity-check')")
        assert h.pin("alice", "k", 1.0) == "k"  # v2's new table


def test_v2_pins_are_migrated_seen_when_made_and_on_probation(tmp_path):
    path = tmp_path / "h"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, 0, until=2) == 2
    conn.execute("INSERT INTO pins (nick, key, first_seen) VALUES ('alice', 'a2V5', 5.0)")
    conn.close()
    with History.open(path) as h:
        assert h.load_pins() == [
            {
                "nick": "alice",
                "key": "a2V5",
                "first_seen": 5.0,
                "last_seen": 5.0,
                "protected": False,
            }
        ]


def test_a_failed_step_leaves_the_previous_version_whole(tmp_path):
    path = tmp_path / "h"
    make_v1(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE messages_v2 (x)")  # makes the v2 step fail half-way
    try:
        migrate(conn, 1)
    except sqlite3.OperationalError:
        pass
    else:
        raise AssertionError("the step should have failed")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 3
    conn.execute("DROP TABLE messages_v2")
    assert migrate(conn, 1) == VERSION
    conn.close()
    with History.open(path) as h:
        assert h.count() == 3


def test_v2_keys_are_recomputed_in_sqlite_and_duplicates_still_ignored(tmp_path):
    path = tmp_path / "h"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, 0, until=2) == 2
    hashed = message("hashed")
    conn.execute(
        "INSERT INTO messages (received_at, idkey, id, addr, nick, body, timestamp, flags)"
        " VALUES (1.0, whisper_idkey(?1), ?1, 'a:1', 'al', 'hashed', 5, 0),"
        " (2.0, whisper_idkey('go-id'), 'go-id', 'a:2', '', 'go', NULL, 0)",
        (hashed.id,),
    )
    conn.execute("INSERT INTO messages_text (messages_text) VALUES ('rebuild')")
    conn.close()
    with History.open(path) as h:
        keys = [r[0] for r in h._conn.execute("SELECT idkey FROM messages ORDER BY seq")]
        assert keys == [hashed.id[12:28].encode(), "go-id"]  # a BLOB, a TEXT
        assert h.add_messages([Record(hashed, 3.0)]) == 0
        go = Message.from_wire({"ID": "go-id", "Addr": "x:1", "Body": "y"})
        assert h.add_messages([Record(go, 3.0)]) == 0
        assert [s.seq for s in h.search("hashed")] == [1]
        assert h.find("go-id").seq == 2


def test_a_new_history_takes_every_step(tmp_path):
    with History.open(tmp_path / "h") as h:
        tables = {r[0] for r in h._conn.execute("SELECT name FROM sqlite_master")}
        assert {"messages", "messages_text", "peers", "pins", "meta"} <= tables
        assert h._conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
