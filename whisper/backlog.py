"""Backlog (extension 11): recent messages, replayed to a peer when we open a link to it.

Rules (PROTOCOL.md §7.3 is normative):

- A replay holds at most ``max_entries`` (N) messages: the last N that are not the peer's
  own, so a returning peer that said much is still told what the others said.  To have
  them, ``Backlog`` keeps the chat messages we accepted or originated with at most N per
  ``Addr`` (an author's oldest go first) and 2N in all (the oldest go first): then the last
  N messages not by any one author P are always kept (an entry older than 2N others is
  older than N that are not P's, since P has at most N), bounds on bytes permitting.  At
  most ``max_bytes`` are kept (encoded size), the oldest going first.  Only messages with a
  Timestamp are kept: one without could be replayed from peer to peer for ever, since
  nothing ever makes it stale.  ``max_entries == 0`` turns the backlog off.
- Every kept message gets a sequence number.  A link's ``LinkReplay`` holds a *mark*, the
  next number at the time the link was created or last lost its connection: the messages
  after the mark went into the link's own queue, so a connection is replayed only the
  entries before it and nothing is sent twice on one connection.
- A replay happens on every connection of a link, the first and each reconnection (a link
  that comes back is most often a peer that restarted and remembers nothing); the receiver's
  seen cache drops what it already has.
- A replay is oldest first (by Timestamp), never holds a message whose ``Addr`` is the
  peer's own (nor counts one towards the N), and only messages at most ``replay_age`` old
  at the moment of the replay: ``REPLAY_MAX_AGE`` (8 minutes), less if our own acceptance
  window has shrunk, so that the receiver (whose window is at least as wide, PROTOCOL.md
  §4.2) never counts one as stale.
- A replay is encoded once: an entry's replay bytes are made the first time it is replayed
  and kept while the entry is (at most ``max_bytes`` more), and every connection is written
  those same ``bytes`` objects.  A link takes them one at a time as it writes, so a link
  stalled in its replay holds one message, not a copy of the backlog; an entry dropped from
  the backlog before a link gets to it is not replayed to it.
- Each replayed message carries ``"History": true`` (an extension key: the ID, which covers
  only Addr, Body and Timestamp, still matches).  ``is_history`` tells a receiver what to
  show as history: the key, or a Timestamp older than ``HISTORY_AGE`` on arrival (what is
  left of a replay after a peer that strips unknown keys relayed it, as the Go peer does).

Pure state: clocks and limits are injected; no trio.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .addr import dialable
from .codec import encode_object
from .freshness import HISTORY_AGE
from .message import Message

DEFAULT_BACKLOG = 50
MAX_BACKLOG = 10_000
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
HISTORY_KEY = "History"
#: Never replay a message older than this (PROTOCOL.md §7.3).
REPLAY_MAX_AGE = 480.0
#: Replay only what the receiver will still accept for this long after we decided.
REPLAY_MARGIN = 60.0


@dataclass(frozen=True)
class BacklogConfig:
    """``Config.backlog``: messages replayed on each new connection (0: off), bytes kept."""

    entries: int = DEFAULT_BACKLOG
    max_bytes: int = DEFAULT_MAX_BYTES


def replay_age(memory: float, skew: float) -> float:
    """How old a replayed message may be, given our seen cache's span and the skew."""
    return max(0.0, min(REPLAY_MAX_AGE, memory - skew - REPLAY_MARGIN))


def is_history(message: Message, now: float) -> bool:
    """Show as history?  ``now`` is wall-clock seconds."""
    if message.fields.get(HISTORY_KEY) is True:
        return True
    ms = message.timestamp_ms
    return ms is not None and now - ms / 1000.0 > HISTORY_AGE


def marked(message: Message) -> dict:
    """The wire object of a replayed message: every key as received, plus the marker."""
    obj = dict(message.fields)
    obj[HISTORY_KEY] = True
    return obj


class Entry(NamedTuple):  # made for every message: a tuple builds 3x faster than a frozen dataclass
    seq: int
    message: Message
    size: int


class Backlog:
    def __init__(
        self,
        max_entries: int = DEFAULT_BACKLOG,
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        clock: Callable[[], float] = time.time,
        max_age: Callable[[], float] = lambda: REPLAY_MAX_AGE,
        max_size: int = 1 << 20,
    ) -> None:
        """``clock``: wall-clock seconds; ``max_age``: seconds, asked at each replay;
        ``max_size``: a replayed message must encode to at most this many bytes."""
        if max_entries < 0 or max_bytes < 0:
            raise ValueError("backlog bounds must be >= 0")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._max_age = max_age
        self._max_size = max_size
        self._entries: OrderedDict[int, Entry] = OrderedDict()  # by seq: arrival order
        self._by_author: dict[str, deque[int]] = {}  # Addr -> its entries' seqs, oldest first
        self._encoded: dict[int, bytes | None] = {}  # seq -> replay bytes (None: too big)
        self._bytes = 0
        self.next_seq = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def add(self, message: Message, size: int) -> bool:
        """Keep a message (``size``: its encoded length).  False if it is not kept."""
        if not self.max_entries or message.timestamp_ms is None or size > self.max_bytes:
            return False
        seq = self.next_seq
        self.next_seq += 1
        self._entries[seq] = Entry(seq, message, size)
        self._bytes += size
        own = self._by_author.get(message.addr)
        if own is None:
            own = self._by_author[message.addr] = deque()
        own.append(seq)
        if len(own) > self.max_entries:
            self._drop(self._entries[own[0]])
        while len(self._entries) > 2 * self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries.values())))
        return True

    def extend(self, items: Sequence[tuple[Message, int]]) -> None:
        """``add`` each of ``items`` (message, encoded size), in order."""
        add = self.add
        for message, size in items:
            add(message, size)

    def _drop(self, entry: Entry) -> None:
        """Forget an entry that is the oldest of its author (every bound drops those)."""
        del self._entries[entry.seq]
        self._bytes -= entry.size
        self._encoded.pop(entry.seq, None)
        own = self._by_author[entry.message.addr]
        own.popleft()
        if not own:
            del self._by_author[entry.message.addr]

    def replay(
        self, peer: str, *, before: int | None = None, now: float, max_age: float
    ) -> list[Message]:
        """What to replay to ``peer``: of the entries numbered below ``before``, the last
        ``max_entries`` fresh ones not by ``peer``, oldest first."""
        return [e.message for e in self._picked(peer, before, now, max_age)]

    def _picked(self, peer: str, before: int | None, now: float, max_age: float) -> list[Entry]:
        limit = self.next_seq if before is None else before
        picked: list[Entry] = []
        for e in reversed(self._entries.values()):  # newest first
            if len(picked) >= self.max_entries:
                break
            m = e.message
            if (
                e.seq < limit
                and m.addr != peer
                and dialable(m.addr) != peer  # its author, whatever its spelling
                and now - m.timestamp_ms / 1000.0 <= max_age  # type: ignore[operator]
            ):
                picked.append(e)
        picked.reverse()
        picked.sort(key=lambda e: e.message.timestamp_ms or 0)  # stable: arrival order on ties
        return picked

    def for_link(self, peer: str) -> LinkReplay:
        return LinkReplay(self, peer)

    def replay_seqs(self, peer: str, before: int) -> list[int]:
        """The entries to replay to ``peer`` now (``replay``), by number."""
        if not self._entries:
            return []
        return [e.seq for e in self._picked(peer, before, self._clock(), self._max_age())]

    def encoded(self, seqs: Iterable[int]) -> Iterator[bytes]:
        """The replay bytes of these entries, each made when it is reached and the same
        object for every link; an entry the backlog has dropped since is skipped."""
        entries, encoded = self._entries, self._encoded
        for seq in seqs:
            if seq not in encoded:
                entry = entries.get(seq)
                if entry is None:
                    continue  # dropped meanwhile
                data = encode_object(marked(entry.message))
                encoded[seq] = data if len(data) <= self._max_size else None
            data = encoded[seq]
            if data is not None:
                yield data

    def encoded_replay(self, peer: str, before: int) -> Iterator[bytes]:
        return self.encoded(self.replay_seqs(peer, before))


class LinkReplay:
    """The replay one outgoing link is owed.  The link calls ``connected`` once its TCP
    connection is up (and writes the messages it returns before anything queued), ``lost``
    when the connection ends."""

    def __init__(self, backlog: Backlog, peer: str) -> None:
        self._backlog = backlog
        self.peer = peer
        self.mark = backlog.next_seq
        self.replays = 0

    def connected(self) -> Iterator[bytes]:
        seqs = self._backlog.replay_seqs(self.peer, self.mark)
        if seqs:
            self.replays += 1
        return self._backlog.encoded(seqs)

    def lost(self) -> None:
        self.mark = self._backlog.next_seq
