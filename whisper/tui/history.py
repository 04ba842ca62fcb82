"""Input history for the terminal UI, persisted across runs in the user's data directory.

Rules:
- The file is ``history`` in the platform's per-user data directory, found by ``platformdirs``
  (Linux: ``$XDG_DATA_HOME/whisper-p2p``, default ``~/.local/share/whisper-p2p``; macOS:
  ``~/Library/Application Support/whisper-p2p``; Windows: ``%LOCALAPPDATA%\\whisper-p2p``).
  Never the working directory.
- One entry per line, each an ASCII JSON string, so an entry may hold any character (a pasted
  newline included); lines that do not parse are skipped.
- It holds what the user typed, so the directory is created 0700 and the file 0600.
- The newest ``max_entries`` are loaded; the file is rewritten (atomically) with only those
  once it holds twice as many.
- A history that cannot be read or written never stops the UI: the failure is logged once
  and the history goes on in memory.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import platformdirs
from prompt_toolkit.history import History

APP_NAME = "whisper-p2p"
MAX_ENTRIES = 1000

log = logging.getLogger("whisper.tui")


def default_path() -> Path:
    return platformdirs.user_data_path(APP_NAME, appauthor=False) / "history"


class PersistentHistory(History):
    """A prompt_toolkit ``History`` kept in a file (or in memory only when ``path`` is None)."""

    def __init__(self, path: Path | None, max_entries: int = MAX_ENTRIES) -> None:
        super().__init__()
        self.path = path
        self.max_entries = max_entries
        self._lines_in_file = 0
        self._failed = path is None

    def load_history_strings(self) -> Iterable[str]:
        """Newest first, as prompt_toolkit wants them."""
        entries = self._read()
        self._lines_in_file = len(entries)
        return list(reversed(entries[-self.max_entries :]))

    def store_string(self, string: str) -> None:
        if self._failed or self.path is None:
            return
        try:
            self._ensure_dir()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as f:
                f.write(_encode(string))
            self._lines_in_file += 1
            if self._lines_in_file >= 2 * self.max_entries:
                self._compact()
        except OSError as exc:
            self._fail("write", exc)

    def _read(self) -> list[str]:
        if self.path is None:
            return []
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            self._fail("read", exc)
            return []
        entries = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, str) and entry:
                entries.append(entry)
        return entries

    def _compact(self) -> None:
        assert self.path is not None
        keep = self._read()[-self.max_entries :]
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(_encode(entry) for entry in keep)
        os.replace(tmp, self.path)
        self._lines_in_file = len(keep)

    def _ensure_dir(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _fail(self, what: str, exc: OSError) -> None:
        if not self._failed:
            log.warning("cannot %s the input history %s: %s", what, self.path, exc.strerror or exc)
        self._failed = True


def _encode(entry: str) -> str:
    # ASCII JSON: no character of the entry (U+2028, a lone surrogate) can split or break a line.
    return json.dumps(entry) + "\n"
