"""``History``: the synchronous store over one SQLite file (messages, known peers, pins).

Rules:
- One ``History`` per file and per process, and one thread at a time in it: the trio side
  (``writer.py``) runs every call under a ``CapacityLimiter(1)``.  ``export.py`` reads the
  same file through a connection of its own, so an export never holds up a write.
- Opening (``opening.py``) either yields a history that works or raises one
  ``HistoryError`` (errors.py) that says what to do: taken by another whisper
  (``dbfile.Lock``), locked by another program
  (a write must get through within ``busy_timeout``), read-only, damaged (SQLite refuses the
  file, or ``PRAGMA quick_check`` is not ``ok``), another program's database, written by a
  newer whisper, or full.  Opening writes (a migration, the ``opened`` mark), so a file that
  cannot be written fails here and not on the first message.
- WAL journal, ``synchronous=NORMAL``: a commit is a write into the WAL with no fsync, so
  what was committed survives the process being killed (SIGKILL: the kernel has the data);
  a power cut may lose the last commits, never the file's consistency.
- ``add_messages`` is idempotent by message (``records.idkey``): a message stored twice is
  one row.  It indexes the new rows for full-text search in the same transaction.
- Every read is bounded by a ``limit`` (at most ``MAX_LIMIT``); pages and searches take
  ``seq`` cursors (``before``: older than; ``after``: newer than).
- Known peers are at most ``MAX_PEERS``: past that the least recently successful go.
- Nick pins (extension 13) are saved whole (``save_pins`` replaces them: the pin table is
  bounded, so the stored ones are too) and loaded least recently seen first.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..message import SECONDS_CUTOFF
from . import errors, inserts, opening, schema
from .dbfile import Lock
from .errors import HistoryError
from .query import fts_query
from .records import (
    COLUMNS,
    Record,
    Stored,
    key_sql,
)

#: Seconds a write waits for another program's lock before failing.
BUSY_TIMEOUT = 2.0
MAX_LIMIT = 10_000
MAX_PEERS = 1000
#: Pins loaded at most (the pin table keeps fewer: ``pins.DEFAULT_MAX_PINS``).
MAX_PINS = 100_000
MAX_ADDR = 300
#: Rows deleted per transaction when pruning, so a prune never holds the file for long.
PRUNE_CHUNK = 10_000
#: A message shown this long before the backlog's window cannot be in it: no peer accepts a
#: Timestamp that far in the future (PROTOCOL.md §4.2 allows a minute or two of skew).
BACKLOG_SLACK = 3600.0

_SELECT = f"SELECT {COLUMNS} FROM messages"
_PIN_INTO = (
    "INSERT OR REPLACE INTO pins (nick, key, first_seen, last_seen, protected)"
    " VALUES (?, ?, ?, ?, ?)"
)
_PIN_SELECT = (
    "SELECT nick, key, first_seen, coalesce(last_seen, first_seen), protected FROM pins"
    " ORDER BY coalesce(last_seen, first_seen) LIMIT ?"
)
_WRITTEN_MS = f"CASE WHEN timestamp < {SECONDS_CUTOFF} THEN timestamp * 1000 ELSE timestamp END"


@dataclass(frozen=True, slots=True)
class KnownPeer:
    addr: str
    last_success: float | None
    last_seen: float
    failures: int


class History:
    def __init__(self, path: Path, conn: sqlite3.Connection, lock: Lock) -> None:
        """Use ``History.open``."""
        self.path = path
        self._conn = conn
        self._lock = lock

    # -- opening and closing ---------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        busy_timeout: float = BUSY_TIMEOUT,
        check: bool = True,
        max_pages: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> History:
        """Open or create the history at ``path``.  ``check``: run ``PRAGMA quick_check``;
        ``max_pages``: cap the file at this many pages (a full disk, for tests)."""
        path = Path(path)
        conn, lock = opening.connect(path, busy_timeout, check, max_pages, clock)
        return cls(path, conn, lock)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA optimize")
        self._conn.close()
        self._lock.release()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except sqlite3.Error as exc:
            raise errors.from_sqlite(exc, self.path) from None

    def _write(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn`` in one write transaction."""

        def transaction() -> Any:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return self._run(transaction)

    # -- messages --------------------------------------------------------------------------

    def add_messages(self, batch: Iterable[Record]) -> int:
        """Store a batch in one transaction; returns how many were new."""
        rows = [r.row() for r in batch]
        return self._add([(False, rows)] if rows else [])

    def add_shown(
        self, chunks: Sequence[tuple[float, Sequence[Any]]], seqs: list[int] | None = None
    ) -> int:
        """Store messages as the relay showed them, in one transaction; returns how many
        were new.  Each chunk is ``(received_at, events)``, the events ``events.Delivered``
        (read by attribute).  ``seqs``: once committed, each event's ``seq`` is appended to
        it (a message stored already: the ``seq`` of the stored one).  A chunk whose
        messages carry their wire bytes (``data``), no file, and one set of flags goes to
        SQLite as those bytes (``inserts.INSERT_WIRE``): no Python per message but a list's worth,
        so a busy relay is not slowed down by its history (the GIL); any other chunk goes
        through ``Record``."""
        steps: list[tuple[bool, Any]] = []  # (wire?, groups or rows), in order
        for at, events in chunks:
            group = inserts.wire_group(at, events)
            if group is None:
                rows = [Record.of(e, at).row() for e in events]
                if steps and not steps[-1][0]:
                    steps[-1][1].extend(rows)
                else:
                    steps.append((False, rows))
            elif steps and steps[-1][0]:
                steps[-1][1].append(group)
            else:
                steps.append((True, [group]))
        if seqs is None:
            return self._add(steps)
        numbered: list[int] = []
        ids = [e.message.id for _, events in chunks for e in events]
        added = self._add(steps, ids, numbered)
        seqs.extend(numbered)
        return added

    def _add(
        self,
        steps: list[tuple[bool, Any]],
        ids: list[str] | None = None,
        seqs: list[int] | None = None,
    ) -> int:
        """Run the inserts (``(True, wire groups)`` or ``(False, rows)``) in order and index
        the new rows, in one transaction; returns how many were new.  ``ids``: the IDs
        inserted, in order, whose ``seq``s go into ``seqs``."""
        if not steps:
            return 0

        def insert(conn: sqlite3.Connection) -> int:
            last = inserts.last_seq(conn)
            before = conn.total_changes
            for wire, part in steps:
                if wire:
                    conn.execute(inserts.INSERT_WIRE, (b"[" + b",".join(part) + b"]",))
                else:
                    inserts.insert_rows(conn, part)
            added = conn.total_changes - before
            if added:
                conn.execute(inserts.INDEX_NEW, (last,))
            if ids is not None and seqs is not None:
                seqs.extend(inserts.seqs_of(conn, ids, last, added))
            return added

        return self._write(insert)

    def last_seq(self) -> int:
        """The newest message's ``seq`` (0: none)."""
        return self._run(lambda: inserts.last_seq(self._conn))

    def count(self) -> int:
        return self._run(lambda: self._conn.execute("SELECT count(*) FROM messages").fetchone()[0])

    def find(self, message_id: str) -> Stored | None:
        rows = self._select(f"{_SELECT} WHERE idkey = {key_sql('?1')} AND id = ?1", (message_id,))
        return rows[0] if rows else None

    def page(self, before: int | None = None, limit: int = 100) -> list[Stored]:
        """The ``limit`` newest messages older than ``before`` (all: None), oldest first."""
        cursor = _top(before)
        rows = self._select(
            f"{_SELECT} WHERE seq < ? ORDER BY seq DESC LIMIT ?", (cursor, _bounded(limit))
        )
        rows.reverse()
        return rows

    def since(self, after: int = 0, limit: int = 100) -> list[Stored]:
        """The ``limit`` oldest messages newer than ``after``, oldest first."""
        return self._select(
            f"{_SELECT} WHERE seq > ? ORDER BY seq LIMIT ?", (after, _bounded(limit))
        )

    def search(self, text: str, limit: int = 50, before: int | None = None) -> list[Stored]:
        """The ``limit`` newest messages holding every word of ``text`` (query.py), older
        than ``before``; newest first."""
        return self._run(lambda: search(self._conn, text, limit, before))

    def recent_for_backlog(self, limit: int, max_age: float, now: float) -> list[Stored]:
        """The ``limit`` newest messages (by ``seq``) whose Timestamp is at most ``max_age``
        seconds before ``now``, oldest first: what a restarted peer's backlog starts with."""
        rows = self._select(
            f"{_SELECT} WHERE received_at >= ? AND {_WRITTEN_MS} >= ? ORDER BY seq DESC LIMIT ?",
            (now - max_age - BACKLOG_SLACK, int((now - max_age) * 1000), _bounded(limit)),
        )
        rows.reverse()
        return rows

    def prune(self, older_than: float) -> int:
        """Delete the messages shown before ``older_than`` (wall-clock seconds)."""
        total = 0
        while True:
            deleted = self._write(
                lambda conn: (
                    conn.execute(
                        "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages"
                        " WHERE received_at < ? ORDER BY seq LIMIT ?)",
                        (older_than, PRUNE_CHUNK),
                    ).rowcount
                )
            )
            total += deleted
            if deleted < PRUNE_CHUNK:
                return total

    def _select(self, sql: str, params: tuple) -> list[Stored]:
        return self._run(
            lambda: [Stored.from_row(r) for r in self._conn.execute(sql, params).fetchall()]
        )

    # -- known peers -----------------------------------------------------------------------

    def peer_linked(self, addr: str, now: float) -> None:
        """A link to ``addr`` came up: it goes first among the peers to redial."""
        addr = addr[:MAX_ADDR]

        def linked(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO peers (addr, first_seen, last_seen, last_success, failures)"
                " VALUES (?1, ?2, ?2, ?2, 0) ON CONFLICT (addr) DO UPDATE SET"
                " last_seen = ?2, last_success = ?2, failures = 0",
                (addr, now),
            )
            conn.execute(
                "DELETE FROM peers WHERE addr IN (SELECT addr FROM peers"
                " ORDER BY last_success DESC LIMIT -1 OFFSET ?)",
                (MAX_PEERS,),
            )

        self._write(linked)

    def peer_failed(self, addr: str, now: float) -> None:
        """A dial to a known peer failed (an unknown address is not remembered)."""
        self._write(
            lambda conn: conn.execute(
                "UPDATE peers SET last_seen = ?, failures = failures + 1 WHERE addr = ?",
                (now, addr[:MAX_ADDR]),
            )
        )

    def known_peers(self, limit: int = 16) -> list[KnownPeer]:
        """Peers we have linked to, the most recently successful first."""
        rows = self._run(
            lambda: self._conn.execute(
                "SELECT addr, last_success, last_seen, failures FROM peers"
                " WHERE last_success IS NOT NULL ORDER BY last_success DESC LIMIT ?",
                (_bounded(limit),),
            ).fetchall()
        )
        return [KnownPeer(*r) for r in rows]

    def forget_peer(self, addr: str) -> None:
        self._write(lambda conn: conn.execute("DELETE FROM peers WHERE addr = ?", (addr,)))

    # -- nick pins (for the identity issue) ------------------------------------------------

    def pin(self, nick: str, key: str, now: float) -> str:
        """Pin ``nick`` to ``key`` unless it is pinned already; returns the pinned key."""

        def pin(conn: sqlite3.Connection) -> str:
            conn.execute(
                "INSERT OR IGNORE INTO pins (nick, key, first_seen) VALUES (?, ?, ?)",
                (nick, key, now),
            )
            return conn.execute("SELECT key FROM pins WHERE nick = ?", (nick,)).fetchone()[0]

        return self._write(pin)

    def pinned(self, nick: str) -> str | None:
        row = self._run(
            lambda: self._conn.execute("SELECT key FROM pins WHERE nick = ?", (nick,)).fetchone()
        )
        return None if row is None else row[0]

    def save_pins(self, records: Iterable[dict[str, Any]]) -> int:
        """Replace the stored pins with ``records`` (``PinTable.records``); how many."""
        rows = [
            (r["nick"], r["key"], r["first_seen"], r["last_seen"], int(r["protected"]))
            for r in records
        ]

        def save(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM pins")
            conn.executemany(_PIN_INTO, rows)
            return len(rows)

        return self._write(save)

    def load_pins(self, limit: int = MAX_PINS) -> list[dict[str, Any]]:
        """The stored pins as ``PinTable.restore`` takes them, least recently seen first."""
        bound = (_bounded_pins(limit),)
        rows = self._run(lambda: self._conn.execute(_PIN_SELECT, bound).fetchall())
        return [
            {"nick": n, "key": k, "first_seen": f, "last_seen": s, "protected": bool(p)}
            for n, k, f, s, p in rows
        ]


def search(
    conn: sqlite3.Connection, text: str, limit: int = 50, before: int | None = None
) -> list[Stored]:
    """``History.search`` on any connection (``export.open_reader``'s too)."""
    match = fts_query(text)
    if match is None:
        return []
    rows = conn.execute(
        f"{_SELECT} WHERE seq IN (SELECT rowid FROM {schema.FTS_TABLE}"
        f" WHERE {schema.FTS_TABLE} MATCH ? AND rowid < ? ORDER BY rowid DESC LIMIT ?)"
        " ORDER BY seq DESC",
        (match, _top(before), _bounded(limit)),
    )
    return [Stored.from_row(r) for r in rows.fetchall()]


def _top(before: int | None) -> int:
    return (1 << 63) - 1 if before is None else before


def _bounded_pins(limit: int) -> int:
    return max(0, min(limit, MAX_PINS))


def _bounded(limit: int) -> int:
    return max(0, min(int(limit), MAX_LIMIT))


__all__ = ["History", "HistoryError", "KnownPeer"]
