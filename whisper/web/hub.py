"""The hub: one subscription to the node, shared by every web client.

Rules:
- The hub holds the web front end's only node subscription (``Bridge.subscribe``), bounded
  as every front end's is: the node never waits for the web.  Delivered messages go into the
  ``MessageRing`` (history shown in timestamp order, ``display.take_batch``) and ``Users``;
  notices, and changes of the peer list, the online list and our nick or address, go to each
  feed as they happen.
- The web keeps to ``MAX_RATE`` messages a second: past it the hub waits, its subscription
  fills, and the node drops (and counts) the rest for it, so a relay blast costs the node
  almost nothing while browsers are attached.  A feed that fell behind is told what it
  missed (``missed`` event), never the node.  The rate is a ``TokenBucket`` of
  ``RATE_BURST`` seconds' worth: below it a batch is taken as it comes (no wait after each
  one, which held the next message back), above it the hub waits for the bucket to refill.
- Behind is a mode: once the node dropped events for the hub (its subscription of
  ``buffer`` events was full), or one batch holds more messages than ``max_rate`` allows
  in ``BEHIND_PAUSE`` (the start of a blast, which feeds are not sent whole), the hub
  shows only the newest ``behind_shown`` messages of each batch (feeds are told how many
  it skipped, in their next ``missed``), cuts its subscription to that many, and looks
  again every ``BEHIND_PAUSE``; it is back to normal once messages arrive no faster than
  ``max_rate``.  Under a flood a browser sees a sample
  of recent messages, not a backlog seconds old, and the node drops the rest for the hub
  at once: the web costs the node per message shown (encoding, frames), not per message
  relayed.
- A feed is a ``Listener``: a cursor into the ring plus a short bounded queue of the other
  events (oldest dropped past ``LISTENER_EVENTS``, and counted).  Messages are never queued
  per feed, so a slow browser holds no memory: it only falls behind the ring.  Each
  message is encoded once, and feeds at the same cursor share one frame's text.
- The peer list, online list and who we are are polled every ``POLL_INTERVAL`` (and at once
  after a notice or ``refresh``), and sent only when they differ from what was sent last
  (a peer's ``Since`` or a user's ``LastSeen`` alone does not count): a redraw under the
  pointer eats clicks.
- Who is online is presence (``Bridge.online()``, ourselves first): the ``users`` event
  holds it as ``online``, and as ``heard`` the nicks heard recently (``Users``) that are not
  online by presence (a peer that does not announce itself, or went quiet).
- Feeds pace their frames on one shared ``tick`` (every ``FRAME_INTERVAL`` on a fixed grid
  while feeds wait for it, at once when overdue; none while nobody waits), not a timer
  each: a hundred feeds' timers cost the node as much as their frames' Python did, and on
  a shared tick the feeds that keep up are at one cursor, so they share the frame's text.
  While behind, the tick comes every ``BEHIND_FRAME_INTERVAL``: the frames, not the
  messages, are then what the web costs the node.
- With history on, the ring is numbered by the store (``Bridge.number_messages``; it
  starts after the newest stored ``seq``), so every cursor the web hands out, the feed's
  and the API's, is the store's ``seq``: a page can page back through the history from
  any message it shows.  A batch is then added in ``seq`` order (the order stored), and a
  message shown unnumbered while history is on (committed before numbering began) is left
  to the history.
- ``close`` tells every feed to end (the server is shutting down).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from operator import attrgetter
from typing import Any

import trio

from ..display import take_batch
from ..events import Delivered
from ..files import CONTENTS_KEY
from ..ratelimit import TokenBucket
from .bridge import Bridge
from .store import MessageRing, Users, dumps

HUB_EVENTS = 4096
HUB_BYTES = 64 * 1024 * 1024
MAX_RATE = 1000.0
RATE_BURST = 0.1  # seconds of MAX_RATE taken at once before the hub waits
POLL_INTERVAL = 0.5
#: A feed sends at most a frame a tick; one ticker for all feeds (see ``tick``).
FRAME_INTERVAL = 0.02
BEHIND_FRAME_INTERVAL = 0.25  # behind (a flood): a sample four times a second is plenty
BEHIND_SHOWN = 25
BEHIND_PAUSE = 0.5
LISTENER_EVENTS = 256
#: A feed frame holds at least one event, and more only while it stays under this.
FRAME_BYTES = 256 * 1024
FRAME_ENTRIES = 512


def event_line(name: str, **fields: Any) -> str:
    return dumps({"Event": name, **fields})


class Listener:
    """One feed's place at the hub (see the module rules)."""

    def __init__(self, cursor: int) -> None:
        self.cursor = cursor
        self.closed = False
        self.dropped = 0
        self.skipped = 0
        self._other: deque[tuple[int, str]] = deque()
        self._wake = trio.Event()

    def push(self, after: int, line: str) -> None:
        """Queue a line to send once the messages up to ``after`` are sent."""
        if len(self._other) >= LISTENER_EVENTS:
            self._other.popleft()
            self.dropped += 1
        self._other.append((after, line))
        self._wake.set()

    def skip(self, count: int) -> None:
        """The hub skipped ``count`` messages (it was behind): say so in the next frame."""
        self.skipped += count
        self._wake.set()

    def poke(self) -> None:
        self._wake.set()

    async def wait(self) -> None:
        await self._wake.wait()

    def take(self, ring: MessageRing, max_bytes: int = FRAME_BYTES) -> list[str]:
        """The next lines to send (possibly none), oldest first; resets the wake-up."""
        self._wake = trio.Event()
        lines: list[str] = []
        missed = ring.missed(self.cursor) + self.skipped
        if missed or self.dropped:
            lines.append(event_line("missed", Messages=missed, Events=self.dropped))
            self.dropped = self.skipped = 0
            self.cursor = max(self.cursor, ring.first_seq - 1)
        size = 0
        other = self._other
        for entry in ring.after(self.cursor, FRAME_ENTRIES):
            while other and other[0][0] < entry.seq:  # pushed before this message arrived
                line = other.popleft()[1]
                lines.append(line)
                size += len(line)
            if lines and size >= max_bytes:
                break
            line = entry.text()
            lines.append(line)
            size += len(line)
            self.cursor = entry.seq
        while other and (not lines or size < max_bytes):
            line = other.popleft()[1]
            lines.append(line)
            size += len(line)
        if self.cursor < ring.last_seq or self._other:
            self._wake.set()  # more to send: the writer comes straight back
        return lines

    def frame(self, ring: MessageRing, max_bytes: int = FRAME_BYTES) -> str:
        """``take``'s lines as one frame's text ("": nothing to send).  A feed with only
        messages to send gets the ring's shared text for its cursor (``MessageRing.frame``):
        a hundred feeds that keep up make it once, not a hundred times."""
        if self._other or self.dropped or self.skipped:
            return "\n".join(self.take(ring, max_bytes))
        if not ring.first_seq - 1 <= self.cursor < ring.last_seq:  # missed some, or none new
            return "\n".join(self.take(ring, max_bytes))
        self._wake = trio.Event()
        text, self.cursor = ring.frame(self.cursor, FRAME_ENTRIES, max_bytes)
        if self.cursor < ring.last_seq:
            self._wake.set()
        return text


class Hub:
    def __init__(
        self,
        bridge: Bridge,
        ring: MessageRing | None = None,
        users: Users | None = None,
        *,
        max_rate: float = MAX_RATE,
        poll_interval: float = POLL_INTERVAL,
        frame_interval: float = FRAME_INTERVAL,
        buffer: int = HUB_EVENTS,
        behind_shown: int = BEHIND_SHOWN,
    ) -> None:
        self.bridge = bridge
        self.ring = ring if ring is not None else MessageRing()  # an empty ring is falsy
        self.users = users or Users()
        self.max_rate = max_rate
        self.poll_interval = poll_interval
        self.frame_interval = frame_interval
        self._tick = trio.Event()  # set at the next tick, then replaced
        self._ticking = trio.Event()  # someone waits for a tick
        self.buffer = buffer
        self.behind_shown = behind_shown
        self.behind = False  # the mode of the rules: the node drops most messages for us
        self._listeners: set[Listener] = set()
        self._new = trio.Event()
        self._refresh = trio.Event()
        self._sent: dict[str, Any] = {}
        self._numbered = False
        self.closing = False

    # -- what feeds and handlers use ---------------------------------------------------

    @property
    def state(self) -> dict[str, str]:
        return {"Nick": self.bridge.nick, "Addr": self.bridge.addr}

    def attach(self, cursor: int) -> Listener:
        listener = Listener(cursor)
        listener.closed = self.closing
        self._listeners.add(listener)
        return listener

    def detach(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    def snapshot_lines(self) -> list[str]:
        """What a new feed is told first: who we are, the peers, who is online."""
        return [
            event_line("me", **self.state, Next=self.ring.last_seq),
            event_line("peers", peers=self.bridge.peers()),
            event_line("users", **self.who()),
        ]

    def who(self) -> dict[str, list[dict[str, Any]]]:
        """Who is online by presence, and who else was heard recently (see the rules)."""
        online = self.bridge.online()
        nicks = {u["Nick"] for u in online}
        heard = [u for u in self.users.records() if u["Nick"] not in nicks]
        return {"online": online, "heard": heard}

    def _users_key(self) -> tuple[Any, ...]:
        online = [(u["Nick"], u["Addr"], u["Linked"], u["You"]) for u in self.bridge.online()]
        heard = sorted((u["Nick"], u["Seen"] // 60) for u in self.users.records())
        return (online, heard)  # a nick heard again within the minute changes nothing

    async def wait_for_message(self, cursor: int, timeout: float) -> None:
        """Return once the ring holds a message after ``cursor``, or after ``timeout``."""
        with trio.move_on_after(timeout):
            while not self.closing and cursor >= self.ring.last_seq:
                await self._new.wait()

    async def tick(self) -> None:
        """Return at the next shared frame tick."""
        self._ticking.set()
        await self._tick.wait()

    async def _ticker(self) -> None:
        due = -math.inf
        while True:
            await self._ticking.wait()
            # on a fixed grid while feeds keep asking; at once if it is overdue (the feeds'
            # sends took longer than the interval, or nobody asked for a while)
            interval = BEHIND_FRAME_INTERVAL if self.behind else self.frame_interval
            due = max(due + interval, trio.current_time())
            await trio.sleep_until(due)
            self._ticking = trio.Event()
            tick, self._tick = self._tick, trio.Event()
            tick.set()

    def refresh(self) -> None:
        """Something changed (our nick ...): look at the lists now, not at the next poll."""
        self._refresh.set()

    def close(self) -> None:
        self.closing = True
        self._new.set()
        self._tick.set()
        for listener in self._listeners:
            listener.closed = True
            listener.poke()

    # -- running -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self.bridge.subscribe(self.buffer, HUB_BYTES) as events:
            last = await self.bridge.number_messages()
            if last is not None:
                self._numbered = True
                self.ring.last_seq = max(self.ring.last_seq, last)
            async with trio.open_nursery() as nursery:
                self._sent = {"me": self.state, "peers": _comparable(self.bridge.peers())}
                self._sent["users"] = self._users_key()
                nursery.start_soon(self._watch)
                nursery.start_soon(self._ticker)
                task_status.started()
                dropped, looked = events.dropped, trio.current_time()
                rate = TokenBucket(self.max_rate, self.max_rate * RATE_BURST, looked)
                async for first in events:
                    batch = await take_batch(events, [first])
                    messages = sum(type(e) is Delivered for e in batch)
                    lost, dropped = events.dropped - dropped, events.dropped
                    now, since = trio.current_time(), looked
                    looked = now
                    if self.behind:  # still flooded: more arrived than we would show
                        self.behind = lost + messages > self.max_rate * (now - since)
                    else:  # dropped for us, or more at once than half a second's worth
                        self.behind = lost > 0 or messages > self.max_rate * BEHIND_PAUSE
                    events.max_events = self.behind_shown if self.behind else self.buffer
                    if self.behind:
                        batch = self._newest(batch, messages - self.behind_shown)
                    self._ingest(batch)
                    if self.behind:
                        await trio.sleep(BEHIND_PAUSE)
                    elif messages and self.max_rate < math.inf:
                        owed = messages - rate.take_up_to(messages, now)
                        if owed > 0:  # past the rate: wait until it is paid
                            await trio.sleep(owed / self.max_rate)
                            rate.take_up_to(owed, trio.current_time())

    def _newest(self, batch: list, skip: int) -> list:
        """``batch`` without its oldest ``skip`` messages; feeds are told of them."""
        if skip <= 0:
            return batch
        for listener in self._listeners:
            listener.skip(skip)
        kept = []
        for event in batch:
            if skip and type(event) is Delivered:
                skip -= 1
            else:
                kept.append(event)
        return kept

    def _ingest(self, batch: list) -> None:
        added = False
        numbered = self._numbered and self.bridge.history_on
        if numbered:  # in the order stored (take_batch put history in time order)
            _in_seq_order(batch)
        for event in batch:
            if type(event) is Delivered:
                if not (numbered and not event.seq):
                    self.ring.add(event, _size(event))
                if self.users.heard(event):
                    self._refresh.set()  # a nick not heard before: the online list changed
                added = True
            else:  # a status event: a notice, a peer linked or lost ...
                line = event_line("notice", Text=event.text, Warning=event.warning)
                self._broadcast(line)
                self._refresh.set()  # connected, lost, disconnected ...: peers changed
        if added:
            self._new.set()
            self._new = trio.Event()
            for listener in self._listeners:
                listener.poke()

    async def _watch(self) -> None:
        while True:
            with trio.move_on_after(self.poll_interval):
                await self._refresh.wait()
            self._refresh = trio.Event()
            self._look()

    def _look(self) -> None:
        self._send_me(self.state)
        peers = self.bridge.peers()
        if _comparable(peers) != self._sent.get("peers"):
            self._sent["peers"] = _comparable(peers)
            self._broadcast(event_line("peers", peers=peers))
        self.users.expire()
        users = self._users_key()
        if users != self._sent.get("users"):
            self._sent["users"] = users
            self._broadcast(event_line("users", **self.who()))

    def _send_me(self, value: dict[str, str]) -> None:
        if self._sent.get("me") == value:
            return
        self._sent["me"] = value
        self._broadcast(event_line("me", **value, Next=self.ring.last_seq))

    def _broadcast(self, line: str) -> None:
        after = self.ring.last_seq
        for listener in self._listeners:
            listener.push(after, line)

    def listeners(self) -> Iterator[Listener]:
        return iter(self._listeners)


def _in_seq_order(batch: list) -> None:
    """Sort the messages of ``batch`` by ``seq`` in place, leaving the other events be."""
    places = [i for i, e in enumerate(batch) if type(e) is Delivered]
    for i, event in zip(places, sorted((batch[i] for i in places), key=_SEQ), strict=True):
        batch[i] = event


_SEQ = attrgetter("seq")


def _comparable(peers: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(p["Addr"], p["Direction"], p["State"], p["Error"]) for p in peers]


def _size(event: Delivered) -> int:
    """About what the ring's entry holds: the message, file contents included."""
    message = event.message
    contents = message.fields.get(CONTENTS_KEY)
    extra = len(contents) if isinstance(contents, str) else 0
    return 200 + len(message.body) + len(message.nick) + len(message.addr) + extra
