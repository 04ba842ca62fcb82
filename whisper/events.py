"""What a node tells its front ends (terminal UI, headless, web, JSON API): typed events.

Rules:
- Front ends receive these from ``Node.subscribe()`` and never reach into the node otherwise;
  they act on it only through ``Node``'s public methods and ``commands.execute``.
- An event is data: a front end decides how to show it.  Every event but ``Delivered`` also
  has ``text`` (one English line, for displays that just print it) and ``warning``; neither
  is cleaned for any display: strings a peer chose (an ``Addr``, a reason quoting it) reach
  the front end raw, and each cleans them its own way (``sanitize.for_terminal``, HTML
  escaping, nothing for JSON).
- ``size`` is what an event weighs in a front end's bounded buffer (``subscription.py``):
  a message's encoded length, a status event's text length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from .files import RejectedFile, StoredFile
from .message import Message

if TYPE_CHECKING:
    from .identity.stages import Shown


class Delivered(NamedTuple):  # one per message relayed: a tuple builds 3x faster than a dataclass
    """A chat message to display: a new one from the network, or one of ours (``own``).

    ``history``: a replayed or old message, shown as history (``backlog.is_history``);
    ``file``: what the message carried as a file (extension 10), kept or rejected;
    ``size``: its encoded length in bytes;
    ``ident``: with identities on (extension 13), its trust, channel, whether it is direct,
    and the nick and text to show (``identity.stages.Shown``); None when they are off;
    ``data``: its wire encoding as relayed (``codec.encode_object``), b"" when not encoded
    (the history store parses it in SQLite instead of encoding the message again);
    ``seq``: its number in the history (the store's ``seq``, the web API's cursor) when a
    front end asked for numbers (``HistoryStage.numbered``), else 0."""

    message: Message
    own: bool = False
    history: bool = False
    file: StoredFile | RejectedFile | None = None
    size: int = 0
    ident: Shown | None = None
    data: bytes = b""
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user may want to know that has no type of its own (a file saved ...)."""

    text: str
    warning: bool = False


@dataclass(frozen=True, slots=True)
class PeerLinked:
    """An outgoing link's connection is up (``addr``: the peer's IP:PORT)."""

    addr: str

    @property
    def text(self) -> str:
        return f"connected to {self.addr}"

    warning = False


#: Why a link ended when its peer closed the connection cleanly (EOF): not a warning.
CLEAN_CLOSE = "peer closed the connection"


@dataclass(frozen=True, slots=True)
class PeerLost:
    """An outgoing link's connection ended (``reason``); it is retried (PROTOCOL.md §5.2)."""

    addr: str
    reason: str

    @property
    def text(self) -> str:
        return f"lost {self.addr}: {self.reason}"

    @property
    def warning(self) -> bool:
        return self.reason != CLEAN_CLOSE  # a peer that quit is no cause for alarm


@dataclass(frozen=True, slots=True)
class GaveUp:
    """An outgoing link failed too often in a row and is closed (``reason``: the last error)."""

    addr: str
    reason: str

    @property
    def text(self) -> str:
        return f"gave up on {self.addr}: {self.reason}"

    warning = True


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The user closed a link (``/disconnect``): outgoing, or an incoming connection."""

    addr: str

    @property
    def text(self) -> str:
        return f"disconnected from {self.addr}"

    warning = False


@dataclass(frozen=True, slots=True)
class Dropped:
    """An incoming connection was closed because it broke the protocol (``reason``)."""

    remote: str
    reason: str

    @property
    def text(self) -> str:
        return f"dropped {self.remote}: {self.reason}"

    warning = True


@dataclass(frozen=True, slots=True)
class Blacklisted:
    """Flood control cut an incoming connection (PROTOCOL.md §7.4) and blacklisted its
    ``host`` for ``seconds``; ``reason`` is flood control's account of it."""

    remote: str
    host: str
    seconds: float
    reason: str

    @property
    def text(self) -> str:
        return f"dropped {self.remote}: {self.reason}"

    warning = True


@dataclass(frozen=True, slots=True)
class UserJoined:
    """A presence announcement (PROTOCOL.md §7.11) named a nick we did not know online."""

    nick: str
    addr: str

    @property
    def text(self) -> str:
        return f"{self.nick} joined"

    warning = False


@dataclass(frozen=True, slots=True)
class UserLeft:
    """A user said goodbye (a clean exit)."""

    nick: str
    addr: str

    @property
    def text(self) -> str:
        return f"{self.nick} left"

    warning = False


@dataclass(frozen=True, slots=True)
class UserQuiet:
    """A user was not heard of for several presence periods: forgotten."""

    nick: str
    addr: str

    @property
    def text(self) -> str:
        return f"{self.nick} went quiet"

    warning = False


@dataclass(frozen=True, slots=True)
class NickChanged:
    """A user's presence announcement carries a new nick."""

    old: str
    new: str
    addr: str

    @property
    def text(self) -> str:
        return f"{self.old} is now {self.new}"

    warning = False


#: The presence events: chat, shown in the message area (headless: on stderr).
PRESENCE_EVENTS = (UserJoined, UserLeft, UserQuiet, NickChanged)


#: Every event that is not a message: each has ``text`` and ``warning``.
Status = (
    Notice
    | PeerLinked
    | PeerLost
    | GaveUp
    | Disconnected
    | Dropped
    | Blacklisted
    | UserJoined
    | UserLeft
    | UserQuiet
    | NickChanged
)
Event = Delivered | Status


def weight(event: Event) -> int:
    """What ``event`` costs in a front end's buffer (see the module rules)."""
    return event.size if type(event) is Delivered else len(event.text)  # type: ignore[union-attr]
