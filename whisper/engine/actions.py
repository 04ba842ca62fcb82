"""What the engine tells its shell to do: plain frozen dataclasses, and the outbox they gather in.

Rules:
- Every input method of the engine returns a ``list`` of these, in the order they are to
  be carried out: ``Deliver`` first (front ends), then the rest as decided, ``Flush`` last.
- An action names the engine's own handle (a link's ``Peer``, an ``Incoming``), never a
  socket or a task: the shell maps handles to its tasks.  A handle the shell no longer has
  a task for (a link closed meanwhile) makes the action a no-op.
- Bytes for a link are not in the actions: they wait in the link's queue
  (``sendqueue.py``) and the link's task takes them with ``Engine.data_to_send``.
  ``Flush`` names the links that have something new to take.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..events import Event
from ..files import StoredFile

if TYPE_CHECKING:
    from ..peers import Peer
    from .incoming import Incoming


@dataclass(frozen=True, slots=True)
class Deliver:
    """Offer these events to every front end, in order."""

    events: list[Event]


@dataclass(frozen=True, slots=True)
class Dial:
    """Start the task of a new outgoing link (it dials ``link.addr``)."""

    link: Peer


@dataclass(frozen=True, slots=True)
class Retry:
    """The link's connection failed: its task waits until ``at`` and dials again."""

    link: Peer
    at: float


@dataclass(frozen=True, slots=True)
class CloseLink:
    """Stop the task of an outgoing link and close its connection."""

    link: Peer
    reason: str


@dataclass(frozen=True, slots=True)
class CloseIncoming:
    """Close an incoming connection (``reason`` is for the log)."""

    conn: Incoming
    reason: str


@dataclass(frozen=True, slots=True)
class Save:
    """Write a received file into ``-downloads`` (off the event loop), then say how it went."""

    file: StoredFile


@dataclass(frozen=True, slots=True)
class Reverse:
    """Start the task of ``link`` writing on the accepted connection ``conn`` (its writer
    asked for a two-way link, ``twoway.py``): no dial."""

    link: Peer
    conn: Incoming


@dataclass(frozen=True, slots=True)
class Tick:
    """Call ``Engine.tick`` at ``at`` (or at once if that has passed), earlier than its last
    answer said: a router's timer (``overlay_router.py``)."""

    at: float


@dataclass(frozen=True, slots=True)
class Flush:
    """These links have new data: wake their tasks."""

    links: tuple[Peer, ...]


Action = Deliver | Dial | Reverse | Retry | CloseLink | CloseIncoming | Save | Tick | Flush


class Outbox:
    """Where the engine and its stages gather the actions of one input."""

    __slots__ = ("actions", "events", "woken")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.actions: list[Action] = []
        self.woken: dict[str, Peer] = {}

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def take(self) -> list[Action]:
        """The actions gathered since the last ``take``, in the order of the module rules."""
        out: list[Action] = []
        if self.events:
            out.append(Deliver(self.events))
            self.events = []
        if self.actions:
            out += self.actions
            self.actions = []
        if self.woken:
            out.append(Flush(tuple(self.woken.values())))
            self.woken = {}
        return out
