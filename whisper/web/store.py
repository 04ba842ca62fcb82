"""What the web front end remembers: recent messages under our own cursor, and who spoke.

Rules:
- ``MessageRing`` keeps the last ``max_entries`` delivered messages, and at most ``max_bytes``
  of them (the size it is given: about what an entry holds, file contents included); past
  either bound the oldest go.  Each has a number that only grows: the API's cursor, never a
  sender's Timestamp (which any peer sets as it likes).  With history on, that number is
  the store's ``seq`` (``Delivered.seq``), so the ring and the history share one cursor; a
  message numbered no higher than the newest held (one the history had already, shown
  again) is not added twice.  Otherwise (``seq`` 0) it is the next of a local sequence.
- ``after(cursor, limit)`` is what follows a cursor, oldest first; a cursor beyond the
  newest number is from an earlier run (the sequence restarts with the process) and gets
  everything held.  ``latest(limit)`` is the newest ``limit``.  ``missed(cursor)`` is how many
  messages after a cursor were already forgotten.
- A record is JSON-ready: the wire field names (``ID``, ``Addr``, ``Nick``, ``Body``,
  ``Timestamp``: always in milliseconds here, 0 when the message has none) plus ours
  (``Seq``, ``Own``, ``History``, ``File`` or ``FileRejected``).
  A file travels as its number, name, type, size and whether it may be previewed (its
  bytes are PNG, JPEG, GIF or WebP), never as its contents; other extension
  keys are not copied.  Each record's JSON text is made once, when first asked for, and
  shared by every feed; so is a frame's text for a cursor (``frame``), until the next add.
- ``Users`` is who was heard recently, by nick (messages from the network that are not
  history; at most ``MAX_NICK_CHARS`` characters, else not kept), at most ``max_users`` of
  them, each forgotten ``window`` seconds after it last spoke.  Who is online is presence
  (``Bridge.online``); the page lists these beside it, dimmed, when not online.

Pure state: the wall clock is injected; no trio.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import dropwhile, islice, takewhile
from typing import Any

from ..events import Delivered
from ..files import RejectedFile, StoredFile

DEFAULT_MAX_ENTRIES = 2000
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_USER_WINDOW = 600.0
DEFAULT_MAX_USERS = 256
MAX_NICK_CHARS = 64


PREVIEW_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def preview_type(data: bytes) -> str | None:
    """The safe raster type (PNG, JPEG, GIF, WebP) the bytes are, whatever the sender said."""
    for magic, mime in PREVIEW_MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def file_record(file: StoredFile) -> dict[str, Any]:
    record = {"Number": file.number, "Name": file.name, "Type": file.mime, "Size": file.size}
    record["Preview"] = preview_type(file.data[:16]) is not None
    return record


def message_record(seq: int, event: Delivered) -> dict[str, Any]:
    message = event.message
    record: dict[str, Any] = {"Seq": seq, "ID": message.id, "Addr": message.addr}
    record["Nick"] = message.nick
    record["Body"] = message.body
    record["Timestamp"] = message.timestamp_ms or 0  # always ms here, 0: none
    record["Own"] = event.own
    record["History"] = event.history
    if isinstance(event.file, StoredFile):
        record["File"] = file_record(event.file)
    elif isinstance(event.file, RejectedFile):
        record["FileRejected"] = event.file.reason
    ident = event.ident
    if ident is not None:  # extension 13: the text shown, who from, and how far trusted
        record["Body"], record["Nick"] = ident.text, ident.nick or message.nick
        record["Trust"] = ident.trust.value
        record["Verified"] = ident.verified
        record["Direct"] = ident.direct
        record["Channel"] = ident.channel
        record["Fingerprint"] = ident.short
        record["To"] = ident.to
    return record


def stored_record(stored: Any) -> dict[str, Any]:
    """A message from the history (``store.Stored``): as ``message_record``, its ``Seq`` the
    store's own sequence (the ``before`` cursor of ``/api/search``), plus ``Received`` (wall
    clock seconds) and ``Channel`` (None: none)."""
    event = Delivered(stored.message, own=stored.own, history=stored.history)
    record = message_record(stored.seq, event)
    record.update(Received=round(stored.received_at, 3), Channel=stored.channel)
    return record


def dumps(value: Any) -> str:
    """Compact JSON text; non-ASCII kept (the page and curl read UTF-8)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(slots=True)
class Entry:
    seq: int
    event: Delivered
    size: int
    _text: str = field(default="", repr=False)

    def record(self) -> dict[str, Any]:
        return message_record(self.seq, self.event)

    def text(self, event_name: str = "message") -> str:
        """This entry as one feed line (``{"Event": "message", ...}``), made once."""
        if not self._text:
            self._text = dumps({"Event": event_name, **self.record()})
        return self._text


class MessageRing:
    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: deque[Entry] = deque()
        self._bytes = 0
        self.last_seq = 0
        self._frames: dict[int, tuple[str, int]] = {}  # cursor -> frame (see ``frame``)
        self._frames_at = 0  # the last_seq they were made at

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def first_seq(self) -> int:
        """The oldest number held (``last_seq + 1`` when empty)."""
        return self._entries[0].seq if self._entries else self.last_seq + 1

    def add(self, event: Delivered, size: int) -> Entry | None:
        """Keep ``event``; None: it is numbered and not newer than the newest (see Rules)."""
        seq = event.seq
        if not seq:
            seq = self.last_seq + 1
        elif seq <= self.last_seq:
            return None
        self.last_seq = seq
        entry = Entry(seq, event, size)
        self._entries.append(entry)
        self._bytes += size
        while len(self._entries) > self.max_entries or (
            self._bytes > self.max_bytes and len(self._entries) > 1
        ):
            self._bytes -= self._entries.popleft().size
        return entry

    def after(self, cursor: int, limit: int) -> list[Entry]:
        if cursor > self.last_seq:
            cursor = 0  # a cursor from an earlier run: everything we hold
        # from the newest end: a feed's cursor is near it, and a deque indexes in O(distance)
        tail = list(takewhile(lambda e: e.seq > cursor, reversed(self._entries)))
        tail.reverse()
        return tail[:limit]

    def before(self, cursor: int, limit: int) -> list[Entry]:
        """The ``limit`` newest held that are older than ``cursor``, oldest first."""
        older = dropwhile(lambda e: e.seq >= cursor, reversed(self._entries))
        page = list(islice(older, limit))
        page.reverse()
        return page

    def frame(self, cursor: int, limit: int, max_bytes: int) -> tuple[str, int]:
        """The feed lines of the entries after ``cursor`` joined as one frame's text (at
        least one entry, more while under ``max_bytes``, at most ``limit``), and the number
        of its last entry.  Made once per cursor until a message is added: every feed at
        that cursor gets the same text."""
        if self._frames_at != self.last_seq:
            self._frames.clear()
            self._frames_at = self.last_seq
        made = self._frames.get(cursor)
        if made is None:
            lines: list[str] = []
            size, last = 0, cursor
            for entry in self.after(cursor, limit):
                if lines and size >= max_bytes:
                    break
                lines.append(line := entry.text())
                size += len(line)
                last = entry.seq
            made = self._frames[cursor] = ("\n".join(lines), last)
        return made

    def latest(self, limit: int) -> list[Entry]:
        tail = list(islice(reversed(self._entries), limit))
        tail.reverse()
        return tail

    def missed(self, cursor: int) -> int:
        """How many messages numbered after ``cursor`` are no longer held."""
        if cursor > self.last_seq:
            return 0
        return max(0, self.first_seq - 1 - cursor)


@dataclass(slots=True)
class User:
    nick: str
    addr: str
    seen: float  # wall-clock seconds

    def record(self) -> dict[str, Any]:
        return {"Nick": self.nick, "Addr": self.addr, "Seen": round(self.seen, 3)}


class Users:
    def __init__(
        self,
        window: float = DEFAULT_USER_WINDOW,
        max_users: int = DEFAULT_MAX_USERS,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window = window
        self.max_users = max_users
        self._clock = clock
        self._users: OrderedDict[str, User] = OrderedDict()  # least recent first

    def heard(self, event: Delivered) -> bool:
        """Take note of a delivered message; True if the list of nicks changed."""
        message = event.message
        if event.own or event.history or not message.nick or len(message.nick) > MAX_NICK_CHARS:
            return False
        nick = message.nick
        known = nick in self._users
        self._users[nick] = User(nick, message.addr, self._clock())
        self._users.move_to_end(nick)
        while len(self._users) > self.max_users:
            self._users.popitem(last=False)
        return not known

    def expire(self) -> bool:
        """Forget those silent for longer than ``window``; True if any went."""
        cutoff = self._clock() - self.window
        gone = False
        while self._users:
            nick, user = next(iter(self._users.items()))
            if user.seen >= cutoff:
                break
            del self._users[nick]
            gone = True
        return gone

    def records(self) -> list[dict[str, Any]]:
        """Most recent first."""
        return [u.record() for u in reversed(self._users.values())]
