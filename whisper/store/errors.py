"""Why a history database cannot be used: typed errors, each one line that says what to do.

Rules:
- Every failure of the store reaches its caller as a ``HistoryError`` subclass, never as a raw
  ``sqlite3.Error`` or ``OSError``: ``str(error)`` is one line naming the file, the problem
  and what to do about it, fit to show the user as it is (no traceback).
- The kind is decided by SQLite's primary result code (``sqlite_errorcode & 0xff``) or the
  ``errno`` of an ``OSError``, never by parsing message text: busy or locked -> ``Locked``;
  read-only -> ``ReadOnly``; corrupt or not a database -> ``Corrupt``; full -> ``Full``;
  anything else -> ``Unavailable``, with SQLite's own words.
- The advice names no command-line flag: the peer's flags for history are not there yet.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

# SQLite primary result codes (https://sqlite.org/rescode.html).
SQLITE_PERM = 3
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
SQLITE_NOTADB = 26


class HistoryError(Exception):
    """History cannot be used; ``str()`` is the one line to show."""

    problem = "cannot be used"
    advice = "check the file and its directory"

    def __init__(self, path: Path | str, problem: str | None = None, advice: str | None = None):
        self.path = Path(path)
        if problem is not None:
            self.problem = problem
        if advice is not None:
            self.advice = advice
        super().__init__(f"history {self.path}: {self.problem}; {self.advice}")


class HistoryLocked(HistoryError):
    problem = "is in use by another program"
    advice = "close it, or give this whisper another history file"


class HistoryReadOnly(HistoryError):
    problem = "cannot be written (a read-only file, directory or disk)"
    advice = "make it writable, or give whisper another history file"


class HistoryCorrupt(HistoryError):
    problem = "is damaged or is not a database"
    advice = "move it aside and whisper starts a new one (`sqlite3 FILE .recover` may save some)"


class HistoryFull(HistoryError):
    problem = "the disk (or the database's size limit) is full"
    advice = "free some space, then restart whisper"


class HistoryTooNew(HistoryError):
    advice = "upgrade whisper, or give it another history file"


class HistoryNotOurs(HistoryError):
    problem = "is another program's database, not a whisper history"
    advice = "give whisper a file of its own"


class HistoryBehind(HistoryError):
    advice = "nothing more is stored this run; restart whisper to store again"


class HistoryUnavailable(HistoryError):
    pass


_BY_CODE: dict[int, type[HistoryError]] = {
    SQLITE_BUSY: HistoryLocked,
    SQLITE_LOCKED: HistoryLocked,
    SQLITE_READONLY: HistoryReadOnly,
    SQLITE_CORRUPT: HistoryCorrupt,
    SQLITE_NOTADB: HistoryCorrupt,
    SQLITE_FULL: HistoryFull,
}

_BY_ERRNO: dict[int, type[HistoryError]] = {
    errno.EROFS: HistoryReadOnly,
    errno.EACCES: HistoryReadOnly,
    errno.EPERM: HistoryReadOnly,
    errno.ENOSPC: HistoryFull,
    errno.EDQUOT: HistoryFull,
}


def from_sqlite(exc: sqlite3.Error, path: Path | str) -> HistoryError:
    """The typed error for an exception raised by sqlite3 on ``path``."""
    code = getattr(exc, "sqlite_errorcode", None)
    kind = _BY_CODE.get(code & 0xFF) if code is not None else None
    if kind is not None:
        return kind(path)
    if code is not None and code & 0xFF in (SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_IOERR):
        return HistoryUnavailable(path, f"cannot be opened or written ({exc})")
    return HistoryUnavailable(path, f"SQLite failed: {exc}")


def from_os(exc: OSError, path: Path | str) -> HistoryError:
    """The typed error for an ``OSError`` met while opening ``path`` (its directory, lock)."""
    kind = _BY_ERRNO.get(exc.errno or 0)
    if kind is not None:
        return kind(path)
    return HistoryUnavailable(path, f"cannot be opened ({exc.strerror or exc})")
