"""Opening a history file: its lock, whose file it is, its integrity, pragmas, its schema.

Rules (``db.History.open`` is the one caller):
- The file is made private (owner only) and locked against a second whisper before SQLite
  opens it (``dbfile.py``); a lock held is ``HistoryLocked``, naming the holder's pid.
- Nothing is written to a file that is not ours: another program's database (another
  ``application_id``, or tables and no id) is ``HistoryNotOurs``, one from a newer whisper
  ``HistoryTooNew``, a failed ``PRAGMA quick_check`` (``check``) ``HistoryCorrupt``.
- Then WAL, ``synchronous=NORMAL``, the cache and WAL size limits, the migrations, and the
  ``opened`` mark: opening writes, so a file that cannot be written fails here.  On any
  failure the connection is closed and the lock released before the error is raised.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from . import errors, schema
from .dbfile import Lock, LockHeld, make_private

CACHE_KIB = 16 * 1024
WAL_LIMIT = 64 * 1024 * 1024


def connect(
    path: Path,
    busy_timeout: float,
    check: bool,
    max_pages: int | None,
    clock: Callable[[], float],
) -> tuple[sqlite3.Connection, Lock]:
    """The open connection to the history at ``path`` and the lock that keeps it ours;
    raises the right ``HistoryError``."""
    try:
        make_private(path)
        lock = Lock(path)
    except LockHeld as held:
        who = f"another whisper (pid {held.pid})" if held.pid else "another whisper"
        raise errors.HistoryLocked(
            path, f"is in use by {who}", "stop it, or give this one another history file"
        ) from None
    except OSError as exc:
        raise errors.from_os(exc, path) from None
    conn = None
    try:
        conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        _prepare(conn, path, check=check, max_pages=max_pages)
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('opened', ?)", (clock(),))
    except BaseException as exc:
        if conn is not None:
            conn.close()
        lock.release()
        if isinstance(exc, sqlite3.Error):
            raise errors.from_sqlite(exc, path) from None
        raise
    return conn, lock


def refuse_newer(path: Path, version: int) -> None:
    """Raise ``HistoryTooNew`` if a newer whisper wrote the file (schema ``version``)."""
    if version > schema.VERSION:
        raise errors.HistoryTooNew(
            path,
            f"was written by a newer whisper (schema {version}, this one knows up to"
            f" {schema.VERSION})",
        )


def _prepare(conn: sqlite3.Connection, path: Path, *, check: bool, max_pages: int | None) -> None:
    """Whose file, the integrity check, pragmas, the schema: raise the right HistoryError
    or return.  Nothing is written to a file that is not ours."""
    app = conn.execute("PRAGMA application_id").fetchone()[0]  # reads the header first
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if app != schema.APPLICATION_ID:
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app != 0 or version != 0 or tables:
            raise errors.HistoryNotOurs(path)
    refuse_newer(path, version)
    if check:
        result = conn.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            raise errors.HistoryCorrupt(path)
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode != "wal":
        raise errors.HistoryUnavailable(path, f"cannot use a write-ahead log (journal {mode})")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB:d}")
    conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT:d}")
    if max_pages is not None:
        conn.execute(f"PRAGMA max_page_count = {max_pages:d}")
    schema.migrate(conn, version)
