"""Persistent history on SQLite (issue 12): messages shown, known peers, nick pins.

``db.History`` is the synchronous store; ``writer.HistoryWriter`` the trio side that feeds it
off the event loop; ``export`` the log as JSON lines or text; ``cli`` the ``whisper-history``
command.  Nothing here imports the node or a front end: the relay hands it ``Record`` values.
"""

from .db import History, KnownPeer
from .errors import (
    HistoryBehind,
    HistoryCorrupt,
    HistoryError,
    HistoryFull,
    HistoryLocked,
    HistoryNotOurs,
    HistoryReadOnly,
    HistoryTooNew,
    HistoryUnavailable,
)
from .records import FileInfo, Record, Stored

__all__ = [
    "FileInfo",
    "History",
    "HistoryBehind",
    "HistoryCorrupt",
    "HistoryError",
    "HistoryFull",
    "HistoryLocked",
    "HistoryNotOurs",
    "HistoryReadOnly",
    "HistoryTooNew",
    "HistoryUnavailable",
    "KnownPeer",
    "Record",
    "Stored",
]
