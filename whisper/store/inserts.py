"""The statements that store messages, and the Python that prepares their parameters.

Rules (``db.History`` runs these inside its transactions; ``schema.py`` makes the tables):
- A batch of ``Record`` rows is one statement over one JSON array (``INSERT_JSON``), except
  a batch with a NUL in a string, which SQLite's JSON would cut short (``INSERT_ROW``, one
  row at a time), and rows with a lone surrogate, stored with it replaced (``insert_rows``).
- Messages as relayed are one JSON array of groups ``[received_at, flags, [wire object,
  ...]]`` that SQLite alone takes apart (``INSERT_WIRE``); ``wire_group`` makes a group,
  or says (None) that the events must go through ``Record``.
- Every insert is ``OR IGNORE`` on the dedupe key, so a message stored twice is one row;
  ``seqs_of`` gives each inserted ID its ``seq`` (the stored one's, for a duplicate).
"""

from __future__ import annotations

import json
import operator
import sqlite3
from collections.abc import Sequence
from typing import Any

from . import schema
from .records import CONTENTS_KEY, GO_NICK_KEY, HISTORY, NICK_KEY, OWN, key_sql

_INTO = (
    "INSERT OR IGNORE INTO messages (received_at, idkey, id, addr, nick, body, timestamp,"
    " channel, flags, file, extra)"
)
#: A batch of ``Record``s is one statement over one JSON array of rows (``Record.row``).
#: ``executemany`` binds each row in Python and releases and retakes the GIL around each
#: row's step: measured, it slowed a busy event loop 2.8 times as much per row stored.
INSERT_JSON = (
    f"{_INTO} SELECT value ->> 0, {key_sql('value ->> 1')}, value ->> 1, value ->> 2,"
    " value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7, value ->> 8,"
    " value ->> 9 FROM json_each(?)"
)
#: ... except for a batch with a NUL in a string, which SQLite's JSON would cut short there.
INSERT_ROW = f"{_INTO} VALUES (?1, {key_sql('?2')}, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
#: Messages as relayed (``add_shown``): one JSON array of groups ``[received_at, flags,
#: [wire object, ...]]``, each object the bytes the relay sent, parsed by SQLite alone:
#: the same columns ``Record.row`` makes (``NICK_KEY`` / ``GO_NICK_KEY``, ``extra`` without
#: the column keys and ``FileContents``).
_NICK = "coalesce(nullif(w ->> 'Nick', ''), w ->> 'omitempty', '')"
INSERT_WIRE = f"""WITH groups AS MATERIALIZED (
    SELECT key, value ->> 0 AS at, value ->> 1 AS flags, value -> 2 AS objects FROM json_each(?)
)
{_INTO}
SELECT at, {key_sql("id")}, id, w ->> 'Addr', nick, w ->> 'Body', w ->> 'Timestamp', NULL,
    flags | {NICK_KEY} * nick_key | {GO_NICK_KEY} * go_key, NULL,
    nullif(json_remove(w, '$.ID', '$.Addr', '$.Body', '$.Timestamp', '$.{CONTENTS_KEY}',
        iif(nick_key, '$.Nick', '$[0]'), iif(go_key, '$.omitempty', '$[0]')), '{{}}')
FROM (SELECT at, flags, w, id, nick,
        coalesce(json_type(w, '$.Nick') = 'text' AND w ->> 'Nick' = nick, 0) AS nick_key,
        coalesce(json_type(w, '$.omitempty') = 'text' AND w ->> 'omitempty' = nick, 0) AS go_key
    FROM (SELECT g.at, g.flags, m.value AS w, m.value ->> 'ID' AS id,
            {_NICK.replace("w ->>", "m.value ->>")} AS nick
        FROM groups AS g, json_each(g.objects) AS m
        ORDER BY g.key, m.key))
"""
INDEX_NEW = (
    f"INSERT INTO {schema.FTS_TABLE} (rowid, nick, body)"
    " SELECT seq, nick, body FROM messages WHERE seq > ?"
)


def insert_rows(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    try:
        _insert(conn, rows)
    except UnicodeEncodeError:  # a lone surrogate from a local source
        _insert(conn, [_encodable(r) for r in rows])


def _insert(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    text = json.dumps(rows, ensure_ascii=False)
    if "\\u0000" in text:
        conn.executemany(INSERT_ROW, rows)
    else:
        conn.execute(INSERT_JSON, (text,))


_WIRE_SIGNATURE = operator.attrgetter("own", "history", "file")
_WIRE_DATA = operator.attrgetter("data")


def wire_group(at: float, events: Sequence[Any]) -> bytes | None:
    """``events`` as one ``INSERT_WIRE`` group, or None: they must go through ``Record``."""
    if not events:
        return None
    signatures = list(map(_WIRE_SIGNATURE, events))
    first = signatures[0]
    own, history, file = first
    if file is not None or signatures.count(first) != len(signatures):
        return None
    datas = list(map(_WIRE_DATA, events))
    if not all(datas):
        return None
    objects = b",".join(datas)
    if b"\\u0000" in objects:  # SQLite's JSON would cut the string short there
        return None
    flags = OWN * own | HISTORY * history
    return b"[%a,%d,[%b]]" % (at, flags, objects)


def seqs_of(conn: sqlite3.Connection, ids: list[str], last: int, added: int) -> list[int]:
    """The ``seq`` of each of ``ids`` just inserted after ``last`` (``added`` new rows)."""
    if added == len(ids):  # none was stored already: one transaction numbers them in turn
        return list(range(last + 1, last + 1 + added))
    new = dict(conn.execute("SELECT id, seq FROM messages WHERE seq > ?", (last,)).fetchall())
    out = []
    for message_id in ids:
        seq = new.get(message_id)
        if seq is None:
            row = conn.execute(
                f"SELECT seq FROM messages WHERE idkey = {key_sql('?1')}", (message_id,)
            ).fetchone()
            seq = 0 if row is None else row[0]
        out.append(seq)
    return out


def last_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM messages ORDER BY seq DESC LIMIT 1").fetchone()
    return 0 if row is None else row[0]


def _encodable(row: tuple) -> tuple:
    return tuple(
        v.encode("utf-8", "replace").decode("utf-8") if isinstance(v, str) else v for v in row
    )
