"""The history file on disk: where it lives, who may read it, and who holds it.

Rules:
- The default is ``messages.sqlite3`` in the platform's per-user data directory (the one
  ``tui/history.py`` keeps the input history in: ``~/.local/share/whisper-p2p`` on Linux),
  one file per identity once identities exist (``messages-NAME.sqlite3``).
- SQLite must create its ``-wal`` and ``-shm`` files beside the database, so the directory is
  checked for that first (a probe file, created and removed): a read-only directory fails
  as such, not as SQLite's "unable to open database file".
- It holds private conversations: a directory the store creates is 0700, the database file
  is created 0600 before SQLite opens it (SQLite then gives its ``-wal`` and ``-shm`` files
  the same mode), and an existing file readable by group or others is narrowed to 0600.
- One whisper at a time: ``Lock`` takes an exclusive ``flock`` on ``FILE.lock`` (0600,
  holding the owner's pid) for as long as the history is open.  The kernel releases it when
  the process dies, SIGKILL included, so a crash never leaves a stale lock.  It is a file of
  its own: closing any descriptor of the database file would drop SQLite's POSIX locks.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import platformdirs

try:
    import fcntl
except ImportError:  # Windows: no flock; SQLite's own locking still serialises writers
    fcntl = None  # type: ignore[assignment]

APP_NAME = "whisper-p2p"
LOCK_SUFFIX = ".lock"
_SIDE_FILES = ("-wal", "-shm")


class LockHeld(Exception):
    """Another process holds the lock; ``pid`` is what it wrote there (0: unknown)."""

    def __init__(self, pid: int) -> None:
        super().__init__(pid)
        self.pid = pid


def default_path(identity: str = "") -> Path:
    data = platformdirs.user_data_path(APP_NAME, appauthor=False)
    name = re.sub(r"[^A-Za-z0-9_-]", "_", identity)[:64]
    return data / (f"messages-{name}.sqlite3" if name else "messages.sqlite3")


def make_private(path: Path) -> None:
    """Create the parent directory (0700) and the file (0600) if missing; narrow an
    existing file readable by group or others to 0600."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    probe = path.with_name(f".{path.name}.probe")  # SQLite must create -wal and -shm there
    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    os.unlink(probe)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for p in (path, *(path.with_name(path.name + s) for s in _SIDE_FILES)):
            _narrow(p)
    else:
        os.close(fd)


def _narrow(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    if stat.S_ISREG(mode) and mode & 0o077:
        os.chmod(path, 0o600)


class Lock:
    """An exclusive lock on ``PATH.lock`` held until ``release``."""

    def __init__(self, path: Path) -> None:
        self.path = path.with_name(path.name + LOCK_SUFFIX)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if fcntl is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(self._fd)
            self.release()
            raise LockHeld(pid) from None
        except BaseException:
            self.release()
            raise
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the flock
            self._fd = None


def _read_pid(fd: int) -> int:
    try:
        return int(os.pread(fd, 32, 0).split()[0])
    except (OSError, ValueError, IndexError):
        return 0
