"""Export: the whole log, oldest first, as JSON lines or plain text, streamed.

Rules:
- The export reads through a read-only connection of its own (``mode=ro``), in one read
  transaction: a snapshot, consistent however long it takes, that never holds up the
  writer (WAL readers do not block it) and needs no lock, so a script can export the
  history of a whisper that is running.
- Memory is bounded: rows are read ``CHUNK`` at a time by ``seq``.
- ``jsonl``: one object per line, ``{"seq", "received_at", "own", "history", "direct",
  "channel", "file", "message"}``, ``message`` being the wire object (records.py says what
  of it is kept), UTF-8, with the characters ``sanitize.for_json`` escapes escaped.
- ``text``: ``YYYY-MM-DD HH:MM:SS <nick> body`` in local time (``utc``: UTC, with a ``Z``),
  ``* nick text`` for an action, ``[history HH:MM]`` before a replayed message (when it was
  written), ``#channel`` when there is one, ``[file rejected: why]`` after a rejected file;
  every peer string neutralised with ``sanitize.for_terminal``, so the text is one line a
  message and safe to ``cat``.
- The output is a new file, created 0600 (it is the private log): an existing path is
  refused, never overwritten.  ``"-"`` (in ``write_export``'s caller) is stdout.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..sanitize import for_json, for_terminal
from . import errors, schema
from .opening import refuse_newer
from .records import COLUMNS, Stored

FORMATS = ("jsonl", "text")
CHUNK = 1000
ACTION_PREFIX = "/me "


def open_reader(path: Path | str) -> sqlite3.Connection:
    """A read-only connection to a whisper history at the current schema."""
    path = Path(path)
    if not path.exists():
        raise errors.HistoryUnavailable(path, "does not exist", "check the path")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
        try:
            app, version = (
                conn.execute("PRAGMA application_id").fetchone()[0],
                conn.execute("PRAGMA user_version").fetchone()[0],
            )
            if app != schema.APPLICATION_ID:
                raise errors.HistoryNotOurs(path)
            refuse_newer(path, version)
            if version < schema.VERSION:
                raise errors.HistoryUnavailable(
                    path,
                    f"has an older schema ({version}; this whisper reads {schema.VERSION})",
                    "start whisper with it once, which upgrades it",
                )
        except BaseException:
            conn.close()
            raise
    except sqlite3.Error as exc:
        raise errors.from_sqlite(exc, path) from None
    return conn


def rows(conn: sqlite3.Connection) -> Iterator[Stored]:
    """Every message, oldest first, ``CHUNK`` rows at a time (call inside a transaction)."""
    after = 0
    while True:
        chunk = conn.execute(
            f"SELECT {COLUMNS} FROM messages WHERE seq > ? ORDER BY seq LIMIT ?", (after, CHUNK)
        ).fetchall()
        for row in chunk:
            yield Stored.from_row(row)
        if len(chunk) < CHUNK:
            return
        after = chunk[-1][0]


def json_line(s: Stored) -> str:
    obj: dict[str, Any] = {
        "seq": s.seq,
        "received_at": s.received_at,
        "own": s.own,
        "history": s.history,
        "direct": s.direct,
        "channel": s.channel,
        "file": None if s.file is None else s.file.to_json(),
        "message": dict(s.message.fields),
    }
    return for_json(json.dumps(obj, ensure_ascii=False)) + "\n"


def text_line(s: Stored, *, utc: bool = False) -> str:
    when = time.gmtime(s.received_at) if utc else time.localtime(s.received_at)
    parts = [time.strftime("%Y-%m-%d %H:%M:%S", when) + ("Z" if utc else "")]
    if s.channel is not None:
        parts.append(for_terminal("#" + s.channel))
    m = s.message
    if s.history and (ms := m.timestamp_ms) is not None:
        written = time.gmtime(ms / 1000) if utc else time.localtime(ms / 1000)
        parts.append(time.strftime("[history %H:%M]", written))
    sender, body = for_terminal(m.sender), for_terminal(m.body)
    if s.file is None and body.startswith(ACTION_PREFIX):
        parts.append(f"* {sender} {body[len(ACTION_PREFIX) :]}")
    else:
        parts.append(f"<{sender}> {body}")
    if s.file is not None and s.file.rejected is not None:
        parts.append(f"[file rejected: {for_terminal(s.file.rejected)}]")
    return " ".join(parts) + "\n"


def write_export(db: Path | str, out: IO[str], fmt: str = "jsonl", *, utc: bool = False) -> int:
    """Write the history at ``db`` to ``out``; returns how many messages were written."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    conn = open_reader(db)
    count = 0
    try:
        conn.execute("BEGIN")  # one snapshot for the whole export
        for s in rows(conn):
            out.write(json_line(s) if fmt == "jsonl" else text_line(s, utc=utc))
            count += 1
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise errors.from_sqlite(exc, db) from None
    finally:
        conn.close()
    return count


def export(db: Path | str, path: Path | str, fmt: str = "jsonl", *, utc: bool = False) -> int:
    """Export to a new file at ``path`` (0600); refuses one that exists (``FileExistsError``)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    done = False
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            count = write_export(db, f, fmt, utc=utc)
        done = True
    finally:
        if not done:
            os.unlink(path)  # no half-written log left behind
    return count
