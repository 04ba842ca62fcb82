"""File transfer's disk I/O (extension 10): reading a file to send, saving a received one.

Rules (the pure part, names and checks, is ``files.py``; PROTOCOL.md §7.2):
- Everything here blocks: callers on the event loop run it in a worker thread
  (``trio.to_thread.run_sync``: ``commands.py`` for ``/send`` and ``/save``, the node for
  ``-downloads``).  Errors are a ``FileError`` with a one-line reason.
- Reading refuses what is not a regular file and reads at most one byte more than fits in a
  message, so ``/dev/zero`` or a huge file costs nothing.
- Saving never overwrites: a file is created with ``O_EXCL`` (which also refuses to follow a
  symlink there); in a directory the first free name of ``cat.gif``, ``cat (1).gif`` ... is
  taken.  An explicit path that exists is refused.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .files import MAX_FRESH_TRIES, FileError, Outgoing, StoredFile, file_message, max_file_size
from .files import too_big as _too_big


def user_path(text: str) -> Path:
    """A path as the user typed it, ``~`` expanded.  Raises ``FileError`` for ``~nobody``."""
    try:
        return Path(text).expanduser()
    except RuntimeError:  # what pathlib raises for an unknown user, or no home directory
        raise FileError(f"cannot expand {text}: no such user, or no home directory") from None


def prepare(path_text: str, max_message_size: int) -> Outgoing:
    """Read a file to send.  Raises ``FileError`` with a one-line reason."""
    path = user_path(path_text)
    limit = max_file_size(max_message_size)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise FileError(f"{path} is not a regular file")
        if info.st_size > limit:
            raise FileError(_too_big(path.name, info.st_size, limit, max_message_size))
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise FileError(f"no such file: {path}") from None
    except OSError as exc:
        raise FileError(f"cannot read {path}: {exc.strerror or exc}") from None
    return file_message(path.name, data, max_message_size)


# -- saving -----------------------------------------------------------------------------


def save(stored: StoredFile, target: str | None, downloads: Path | None) -> Path:
    """Write a received file: into ``target`` (a new file, or a directory), else into
    ``downloads``, else the current directory.  Never overwrites.  Raises ``FileError``."""
    if target:
        path = user_path(target)
        if not path.is_dir():
            try:
                return _create(path, stored.data)
            except FileExistsError:
                raise FileError(
                    f"{path} exists: not overwritten (give a new name, or a directory)"
                ) from None
        directory = path
    else:
        directory = downloads if downloads is not None else Path.cwd()
    return save_in(directory, stored.name, stored.data)


def save_in(directory: Path, name: str, data: bytes) -> Path:
    """Create ``name`` (already safe) in ``directory``, or the first free ``stem (n).ext``."""
    if not directory.is_dir():
        raise FileError(f"{directory} is not a directory")
    stem, dot, ext = name.rpartition(".")
    if not stem:
        stem, dot, ext = name, "", ""
    for n in range(MAX_FRESH_TRIES):
        candidate = name if n == 0 else f"{stem} ({n}){dot}{ext}"
        path = directory / candidate
        if path.parent != directory:  # safe_name makes this impossible; never trust it
            raise FileError(f"refusing the name {candidate!r}")
        try:
            return _create(path, data)
        except FileExistsError:
            continue
    raise FileError(f"no free name for {name} in {directory}")


def _create(path: Path, data: bytes) -> Path:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        raise  # the caller picks another name, or refuses
    except OSError as exc:
        raise FileError(f"cannot create {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # a NUL in the path
        raise FileError(f"cannot create {path}: {exc}") from None
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise FileError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    return path.resolve()
