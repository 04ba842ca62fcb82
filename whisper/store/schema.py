"""The history database's schema, its versions and the migrations between them.

Rules:
- A whisper history is marked ``PRAGMA application_id = APPLICATION_ID``; its schema version
  is ``PRAGMA user_version``.  A file with another application id, or with tables but no id,
  is another program's database and is never touched.  A version above ``VERSION`` was
  written by a newer whisper and is refused, not downgraded.
- A new file is built by running every migration from 0, so the path an old file takes is
  the path every new file took: each step is exercised on every start of a fresh history.
- Each step runs in one ``BEGIN IMMEDIATE`` transaction together with its ``user_version``
  bump: a crash mid-migration leaves the previous version whole.
- v1 was this store's first cut: messages with a UNIQUE text ID, peers with a last success,
  no full-text index.  v2 comes from measuring it (records.py): the 64-bit ``idkey``, the
  FTS5 index over nick and body, channel and file columns, peers' last attempt and failure
  count, and nick pins.  The v1 -> v2 step rebuilds the table (SQLite cannot drop a UNIQUE
  constraint) keeping every ``seq``, and fills the full-text index from the messages.
  v3 adds each pin's ``last_seen`` and ``protected`` (its segment in the pin table).
  v4 (measured in ``bench/bench_history.py``'s relay section) computes ``idkey`` in SQLite
  from the ID (``records.key_sql``) instead of in Python; the step rebuilds the table again,
  keeping every ``seq`` (so the full-text index, keyed by ``seq``, stays as it is).
- The full-text index is external-content FTS5 (the text is stored once, in ``messages``).
  Rows are indexed by ``db.History.add_messages`` in bulk, in the insert's transaction (an
  ``AFTER INSERT`` trigger cost 21 us a row, the bulk ``INSERT ... SELECT`` 4 us); deletes
  are unindexed by a trigger.  ``columnsize=0``: no per-row size table, since results are
  ordered by time, not by rank.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from .records import idkey, key_sql

APPLICATION_ID = 0x57485350  # "WHSP"
VERSION = 4
FTS_TABLE = "messages_text"

_V1 = """
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    id TEXT NOT NULL UNIQUE,
    addr TEXT NOT NULL,
    nick TEXT NOT NULL,
    body TEXT NOT NULL,
    timestamp INTEGER,
    flags INTEGER NOT NULL,
    extra TEXT
);
CREATE TABLE peers (addr TEXT PRIMARY KEY, last_success REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
"""


def _messages(name: str, idkey: str) -> str:
    """The messages table of v2 and v3 (they differ in ``idkey``)."""
    return f"""CREATE TABLE {name} (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,  -- wall-clock seconds when it was shown
    idkey {idkey} NOT NULL UNIQUE,
    id TEXT NOT NULL,
    addr TEXT NOT NULL,
    nick TEXT NOT NULL,
    body TEXT NOT NULL,
    timestamp INTEGER,  -- as on the wire: seconds or milliseconds
    channel TEXT,
    flags INTEGER NOT NULL,  -- records.OWN | HISTORY | DIRECT | NICK_KEY | GO_NICK_KEY
    file TEXT,  -- JSON: records.FileInfo
    extra TEXT  -- JSON: the other wire keys
);"""


_V2 = f"""
{_messages("messages_v2", "INTEGER")}  -- idkey: records.idkey(id)
INSERT INTO messages_v2 (seq, received_at, idkey, id, addr, nick, body, timestamp, flags, extra)
    SELECT seq, received_at, whisper_idkey(id), id, addr, nick, body, timestamp, flags, extra
    FROM messages ORDER BY seq;
DROP TABLE messages;
ALTER TABLE messages_v2 RENAME TO messages;
CREATE INDEX messages_received ON messages (received_at);
CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5 (
    nick, body, content='messages', content_rowid='seq',
    tokenize='unicode61 remove_diacritics 2', columnsize=0
);
INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('rebuild');
CREATE TRIGGER messages_deleted AFTER DELETE ON messages BEGIN
    INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, nick, body)
        VALUES ('delete', old.seq, old.nick, old.body);
END;

CREATE TABLE peers_v2 (
    addr TEXT PRIMARY KEY,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,  -- the last link or dial attempt
    last_success REAL,  -- the last time a link came up
    failures INTEGER NOT NULL DEFAULT 0  -- failed dials since the last success
) WITHOUT ROWID;
INSERT INTO peers_v2 (addr, first_seen, last_seen, last_success)
    SELECT addr, last_success, last_success, last_success FROM peers;
DROP TABLE peers;
ALTER TABLE peers_v2 RENAME TO peers;
CREATE INDEX peers_success ON peers (last_success);

CREATE TABLE pins (nick TEXT PRIMARY KEY, key TEXT NOT NULL, first_seen REAL NOT NULL)
    WITHOUT ROWID;
"""

#: v3: a pin's last sighting and segment, so that a restarted peer keeps its pins as they
#: were (``identity/pins.py``: ``PinTable.records``).
_V3 = """
ALTER TABLE pins ADD COLUMN last_seen REAL;
ALTER TABLE pins ADD COLUMN protected INTEGER NOT NULL DEFAULT 0;
"""


_V4 = f"""
{_messages("messages_v4", "BLOB")}  -- idkey: records.key_sql(id), BLOB or TEXT
INSERT OR IGNORE INTO messages_v4 (seq, received_at, idkey, id, addr, nick, body, timestamp,
        channel, flags, file, extra)
    SELECT seq, received_at, {key_sql("id")}, id, addr, nick, body, timestamp, channel, flags,
        file, extra
    FROM messages ORDER BY seq;
DROP TABLE messages;
ALTER TABLE messages_v4 RENAME TO messages;
CREATE INDEX messages_received ON messages (received_at);
CREATE TRIGGER messages_deleted AFTER DELETE ON messages BEGIN
    INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, nick, body)
        VALUES ('delete', old.seq, old.nick, old.body);
END;
"""


def _script(sql: str) -> Callable[[sqlite3.Connection], None]:
    def step(conn: sqlite3.Connection) -> None:
        for statement in _statements(sql):
            conn.execute(statement)

    return step


def _statements(sql: str) -> list[str]:
    """Split a script into statements (``executescript`` would COMMIT our transaction)."""
    out, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return [s for s in out if s]


#: MIGRATIONS[n] takes a database from version n to n + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _script(_V1),
    _script(_V2),
    _script(_V3),
    _script(_V4),
]
assert len(MIGRATIONS) == VERSION


def register_functions(conn: sqlite3.Connection) -> None:
    """SQL functions the migrations use."""
    conn.create_function("whisper_idkey", 1, idkey, deterministic=True)


def migrate(conn: sqlite3.Connection, version: int, *, until: int = VERSION) -> int:
    """Run the steps from ``version`` up to ``until``; each its own transaction."""
    register_functions(conn)
    while version < until:
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version](conn)
            version += 1
            conn.execute(f"PRAGMA user_version = {version:d}")
            if version == 1:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID:d}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return version
