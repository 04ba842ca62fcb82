"""What one stored message is, and how it becomes a database row and back.

Rules:
- A ``Record`` is what the relay hands the store: a message as shown, with what only we know
  of it (when we showed it, whether it is ours, shown as history, a direct message, its
  channel, the file it carried).  ``Stored`` is what comes back, numbered by ``seq``: our own
  receive sequence, which only grows (never reused, even after pruning), the cursor of
  every page, search and export.
- The wire object survives the round trip: ``Addr``, ``Body``, ``Timestamp`` and the nick are
  columns; every other key goes into ``extra`` as JSON, except ``FileContents`` (a file's
  bytes, up to a megabyte each, are not history: the file's name, type and size are).  When
  ``Nick`` or ``omitempty`` equal the nick (whisper sends both), a flag says so instead of
  JSON, so that a plain chat message costs no ``json.dumps`` on the way in.  A message's
  ``fields`` read back hold the same keys and values; their order may differ.
- Uniqueness is by ``idkey``, which SQLite computes from the ID (``key_sql``), so that
  storing a message costs the event loop no Python: for a hashed ID (``hash:sha256:HEX``)
  the first 16 hex digits (64 bits) as a BLOB, for any other ID the ID itself as TEXT (a
  BLOB never equals a TEXT, so the two kinds cannot collide).  Two hashed IDs that share
  those digits are one message to the store: a collision needs 2**64 work against a
  message already stored, and a message not yet sent cannot be aimed at.  (Schema v2 kept
  64 bits of BLAKE2b, computed in Python: ``idkey``, still what the v1 -> v2 step uses.)
- ``Record.of(event, now)`` reads a front end's display event (``events.Delivered``) by its
  attributes only, so the store imports nothing above the wire layer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..ids import HASH_PREFIX
from ..message import Message

OWN = 1
HISTORY = 2
DIRECT = 4
NICK_KEY = 8  # the wire object had "Nick" equal to the nick
GO_NICK_KEY = 16  # ... and/or "omitempty" equal to it

CONTENTS_KEY = "FileContents"
#: Wire keys kept in columns (or left out): never in ``extra``.
_COLUMN_KEYS = frozenset({"ID", "Addr", "Body", "Timestamp", CONTENTS_KEY})

#: The columns ``Stored.from_row`` reads, in its order.
COLUMNS = "seq, received_at, id, addr, nick, body, timestamp, channel, flags, file, extra"


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What a file message carried: name, MIME type and size, or why it was rejected."""

    name: str = ""
    mime: str = ""
    size: int = 0
    rejected: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.rejected is not None:
            return {"rejected": self.rejected}
        return {"name": self.name, "type": self.mime, "size": self.size}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> FileInfo:
        if "rejected" in obj:
            return cls(rejected=str(obj["rejected"]))
        return cls(str(obj.get("name", "")), str(obj.get("type", "")), int(obj.get("size", 0)))

    @classmethod
    def of(cls, file: Any) -> FileInfo | None:
        """From ``files.StoredFile`` / ``files.RejectedFile`` (by attribute), or None."""
        if file is None:
            return None
        reason = getattr(file, "reason", None)
        if reason is not None:
            return cls(rejected=str(reason))
        return cls(file.name, file.mime, file.size)


@dataclass(frozen=True, slots=True)
class Record:
    """A message to store, as it was shown."""

    message: Message
    received_at: float  # wall-clock seconds
    own: bool = False
    history: bool = False
    direct: bool = False
    channel: str | None = None
    file: FileInfo | None = None

    @classmethod
    def of(cls, event: Any, received_at: float, channel: str | None = None) -> Record:
        """From a display event (``events.Delivered``: message, own, history, file)."""
        return cls(
            event.message,
            received_at,
            own=event.own,
            history=event.history,
            direct=getattr(event, "direct", False),
            channel=channel,
            file=FileInfo.of(event.file),
        )

    def row(self) -> tuple:
        """The values for ``inserts.INSERT_ROW``, in order (``idkey`` is SQLite's: ``key_sql``)."""
        m = self.message
        fields = m.fields
        flags = OWN * self.own | HISTORY * self.history | DIRECT * self.direct
        extra = {}
        for key, value in fields.items():
            if key in _COLUMN_KEYS:
                continue
            if key == "Nick" and value == m.nick:
                flags |= NICK_KEY
            elif key == "omitempty" and value == m.nick:
                flags |= GO_NICK_KEY
            else:
                extra[key] = value
        file = self.file
        return (
            self.received_at,
            m.id,
            m.addr,
            m.nick,
            m.body,
            m.timestamp,
            self.channel,
            flags,
            None if file is None else json.dumps(file.to_json(), ensure_ascii=False),
            json.dumps(extra, ensure_ascii=False) if extra else None,
        )


@dataclass(frozen=True, slots=True)
class Stored:
    """A message read back from the store."""

    seq: int
    received_at: float
    message: Message
    own: bool = False
    history: bool = False
    direct: bool = False
    channel: str | None = None
    file: FileInfo | None = None

    @classmethod
    def from_row(cls, row: tuple) -> Stored:
        seq, received_at, id_, addr, nick, body, ts, channel, flags, file, extra = row
        fields: dict[str, Any] = {"ID": id_, "Addr": addr, "Body": body}
        if flags & NICK_KEY:
            fields["Nick"] = nick
        if flags & GO_NICK_KEY:
            fields["omitempty"] = nick
        if ts is not None:
            fields["Timestamp"] = ts
        if extra:
            fields.update(json.loads(extra))
        message = Message(id_, addr, body, nick, ts, MappingProxyType(fields))
        return cls(
            seq,
            received_at,
            message,
            own=bool(flags & OWN),
            history=bool(flags & HISTORY),
            direct=bool(flags & DIRECT),
            channel=channel,
            file=None if file is None else FileInfo.from_json(json.loads(file)),
        )


def key_sql(id_sql: str) -> str:
    """The SQL expression of the ``idkey`` of the ID that ``id_sql`` evaluates to."""
    return (
        f"(CASE WHEN {id_sql} GLOB '{HASH_PREFIX}*'"
        f" THEN CAST(substr({id_sql}, {len(HASH_PREFIX) + 1}, 16) AS BLOB) ELSE {id_sql} END)"
    )


def idkey(message_id: str) -> int:
    """Schema v2's key of a message (64 bits of BLAKE2b): the v1 -> v2 migration's."""
    digest = hashlib.blake2b(message_id.encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)
