"""Presence: who is online (PROTOCOL.md §7.11).  Pure state, fed the time.

Rules:
- An announcement is ``{"Presence": "here" | "gone", "ID", "Addr", "Nick"}``, no ``Body``:
  it goes only to links whose peer speaks ``presence`` (``Engine.send(needs=...)``; the Go
  peer crashes on a payload without ``Body``).  Ours: at start (on each new link: see
  ``linked``), every ``PERIOD`` seconds, at once when our nick changes, and ``gone`` on a
  clean exit (``goodbye``).  Each has a fresh random ``ID``.
- A received one is relayed like a chat message: deduplicated by its ``ID`` in the
  engine's seen cache, sent on to the links that speak ``presence`` that the router picks
  (never its author's; the overlay sends it along its author's tree where it can,
  ``overlay_router.py``; flooding to every other link), and rate-limited by flood control,
  which counts every object a connection brings.  One with our own ``Addr``, a malformed
  ``ID``, ``Addr`` or ``Nick``, or over ``MAX_BYTES`` encoded, is dropped.
- The table (``Addr`` -> nick, last seen, the announcement's bytes) says who is online; a
  new link to a peer that speaks presence is sent our announcement and the latest one of
  every user in it, so that a newcomer knows who is here at once (a link opened without a
  backlog replay, for an overlay control or two, ``overlay_router.py``, only ours).
  A user not heard of for ``MISSED`` periods is forgotten (``UserQuiet``); ``gone``
  forgets at once (``UserLeft``); a known ``Addr`` with another nick is a ``NickChanged``;
  a new one a ``UserJoined``.
  At most ``MAX_USERS`` are kept; announcements of others past that are relayed, not kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import codec
from ..addr import dialable
from ..events import NickChanged, UserJoined, UserLeft, UserQuiet
from ..ids import random_id
from ..peers import State
from .hello import PRESENCE

if TYPE_CHECKING:
    from ..peers import Peer
    from .incoming import Incoming
    from .relay import Engine

KEY = "Presence"
HERE, GONE = "here", "gone"
#: Seconds between two announcements of ours.
PERIOD = 60.0
#: Periods without news after which a user is forgotten ("went quiet").
MISSED = 3
MAX_USERS = 1024
MAX_NICK = 256  # characters; a longer nick is not an announcement of ours to believe
MAX_ID = 128
MAX_BYTES = 2048  # an encoded announcement; a bigger one is dropped (the table keeps them)


@dataclass(slots=True)
class User:
    nick: str
    addr: str
    seen: float
    data: bytes  # its latest announcement, as received


@dataclass(frozen=True, slots=True)
class UserInfo:
    """One row of ``/who``: ``seconds`` since last heard of; ``linked``: we have an outgoing
    link to its ``Addr`` that is up; ``you``: our own row."""

    nick: str
    addr: str
    seconds: float
    linked: bool
    you: bool = False


class Presence:
    """Linker, Control and ticker of presence (see the module rules)."""

    def __init__(self, engine: Engine, period: float = PERIOD) -> None:
        self.engine = engine
        self.period = period
        self.users: dict[str, User] = {}
        self._own = b""  # our latest announcement
        self._nick: str | None = None  # the nick it carried
        self._next = 0.0  # when the next one is due
        self.duplicates = 0  # announcements received again (dropped)

    # -- ours ----------------------------------------------------------------------

    def announce(self, now: float, state: str = HERE, *, send: bool = True) -> bytes:
        engine = self.engine
        while not engine.seen.add(mid := random_id(), now):
            pass
        nick = codec.well_formed(engine.nick)
        data = codec.encode_object({KEY: state, "ID": mid, "Addr": engine.addr, "Nick": nick})
        self._own, self._nick, self._next = data, engine.nick, now + self.period
        if send:
            engine.send(data, now, needs=PRESENCE, key=mid)
        return data

    def goodbye(self, now: float) -> None:
        if self.engine.addr:
            self.announce(now, GONE)

    def tick(self, now: float) -> float:
        """Announce if due (or our nick changed), forget the quiet; when to tick next."""
        if self.engine.addr and (now >= self._next or self._nick != self.engine.nick):
            self.announce(now)
        limit = self.period * MISSED
        for user in [u for u in self.users.values() if now - u.seen >= limit]:
            del self.users[user.addr]
            self.engine.out.emit(UserQuiet(user.nick, user.addr))
        due = [u.seen + limit for u in self.users.values()]
        return min([self._next, *due]) if self.engine.addr else now + self.period

    # -- links and what they bring ---------------------------------------------------

    def linked(self, link: Peer, now: float) -> list[bytes]:
        if PRESENCE not in link.caps or not self.engine.addr:
            return []
        if not self._own:
            self.announce(now, send=False)  # the others get it on the next tick
        if link.replay is None and not link.reverse:  # a link for a control or two (overlay)
            return [self._own]
        return [self._own, *(u.data for u in self.users.values() if u.addr != link.addr)]

    def control(self, obj: dict, conn: Incoming, now: float) -> bool:
        state = obj.get(KEY)
        if state not in (HERE, GONE):
            return False
        mid, addr, nick = obj.get("ID"), obj.get("Addr"), obj.get("Nick")
        if not (isinstance(mid, str) and 0 < len(mid) <= MAX_ID and isinstance(nick, str)):
            return True
        canonical = dialable(addr) if isinstance(addr, str) else None
        engine = self.engine
        if canonical is None or canonical == engine.addr or len(nick) > MAX_NICK:
            return True
        if not engine.seen.add(mid, now):
            self.duplicates += 1
            return True
        data = codec.encode_object(obj)
        if len(data) > MAX_BYTES:
            return True
        engine.send(data, now, needs=PRESENCE, author=canonical, via=conn, key=mid)
        self._note(state, canonical, codec.well_formed(nick), data, now)
        return True

    def _note(self, state: str, addr: str, nick: str, data: bytes, now: float) -> None:
        user = self.users.get(addr)
        emit = self.engine.out.emit
        if state == GONE:
            if user is not None:
                del self.users[addr]
                emit(UserLeft(user.nick, addr))
            return
        if user is None:
            if len(self.users) >= MAX_USERS:
                return
            self.users[addr] = User(nick, addr, now, data)
            emit(UserJoined(nick, addr))
            return
        if user.nick != nick:
            emit(NickChanged(user.nick, nick, addr))
        user.nick, user.seen, user.data = nick, now, data

    # -- for front ends --------------------------------------------------------------

    def snapshot(self, now: float) -> list[UserInfo]:
        """Who is online: ourselves first, then by nick."""
        engine, outgoing = self.engine, self.engine.table.outgoing
        rows = [UserInfo(engine.nick, engine.addr, 0.0, False, you=True)] if engine.addr else []
        for user in sorted(self.users.values(), key=lambda u: (u.nick.casefold(), u.addr)):
            link = outgoing.get(user.addr)
            linked = link is not None and link.state is State.CONNECTED
            rows.append(UserInfo(user.nick, user.addr, now - user.seen, linked))
        return rows
