"""The engine's extension points, and the stages whisper itself plugs into them.

Rules:
- An extension is an object with one of these methods, added to the engine's list for it
  (``engine.checks.append(...)``, ...) or, for the router, put in ``engine.router``.  The
  pipeline's body is never edited for one.  Where each runs (``engine/__init__.py`` draws
  the whole pipeline):

  - ``Check.check(message, conn, now)``: after the seen, ID and freshness checks, before
    flood control; a reason drops the message as invalid (counted against ``conn``).
    For signatures.
  - ``Control.control(obj, conn, now)``: a payload without a ``Body`` (not a chat message);
    True if it consumed it.  Unclaimed ones are ignored, as PROTOCOL.md §2.2 says.  For
    hello, presence and routing control.
  - ``Linker.linked(link, now)``: an outgoing link is up (its ``caps`` known): payloads
    to write on it first, before its replay.  For the hello and presence.
  - ``Keeper.keep(messages, own, now)``: every new chat message, ours and accepted ones,
    once, with its encoded size, a batch at a time.  For the backlog and a history store.
  - ``View.view(event)``: what front ends are shown of an accepted message: the event,
    another one (annotated, decrypted), or None to show nothing.  Relaying is not affected.
    For files, channel filters and decryption.
  - ``Router.route(batch, links)``: which links get which of a ``Batch`` of new payloads.
  - ``Watcher.started(now)``, ``Watcher.link_failed(link, now)``: the engine has its
    address; an outgoing link failed (the engine has decided to retry or give up).  For
    the overlay router, which is also asked ``next_deadline()`` and ``tick(now)``.
  - ``Signer.sign(message)``: each message we ``say``, once built (ID, time, nick): the
    message to send instead (signed) and what our front ends are shown of it (an
    ``ident`` for ``Delivered``).  For signatures.

- Stages are plain synchronous objects fed the time; those that need to act (write to one
  link, dial, tell the front ends) are given the engine when built and call its methods.
- A ``Batch`` names each payload's author link (the link to its ``Addr``, never written
  to) and the capability a link must have announced to be sent it (``needs``: a
  ``Body``-less payload must reach only peers that speak it; the Go peer crashes on one).
  Such a batch holds one payload, and ``key`` may name it (its ``ID``: a presence
  announcement) so that a router that routes by ID (the overlay's trees) can send it the
  way chat messages go; FloodRouter ignores it.
- ``FloodRouter``, the default, sends each payload to every other link, and gives the
  links that get the same payloads the same list, so that the engine joins it once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ..backlog import Backlog
from ..events import Delivered, Notice
from ..files import AUTOSAVE_MAX_BYTES, FILE_KEYS, FileStore, StoredFile, human_size
from ..message import Message
from .actions import Outbox, Save

if TYPE_CHECKING:
    from ..peers import Peer
    from .incoming import Incoming


class Relay(NamedTuple):
    """One payload of a ``Batch``, for routers that look at them one by one."""

    data: bytes
    message: Message | None  # None for a control payload
    author: str | None  # key of the author's link (its canonical Addr); None: ours


class Batch:
    """New payloads to route together: what one received chunk (or one of ours) brought.

    Parallel lists, not an object per payload: the engine fills them on the hot path.
    ``authors`` holds the key of each one's author link (its canonical ``Addr``; None:
    ours); ``source`` is the connection they came in on (None: ours); ``needs``, a
    capability a link must have announced to be sent them (None for chat messages);
    ``key``, the ID of a capability payload a router may route by (None: flooded)."""

    __slots__ = ("authors", "data", "key", "lights", "messages", "needs", "source")

    def __init__(
        self, source: Incoming | None = None, needs: str | None = None, key: str | None = None
    ) -> None:
        self.data: list[bytes] = []
        self.messages: list[Message | None] = []
        self.authors: list[str | None] = []
        self.lights: list[bool] = []  # flood control on: light (flood.py) or not, each
        self.source = source
        self.needs = needs
        self.key = key

    def add(self, data: bytes, message: Message | None, author: str | None) -> None:
        self.data.append(data)
        self.messages.append(message)
        self.authors.append(author)

    def appenders(
        self,
    ) -> tuple[Callable[[bytes], None], Callable[[Any], None], Callable[[Any], None]]:
        """``add`` in three bound methods, for the engine's loop."""
        return self.data.append, self.messages.append, self.authors.append

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[Relay]:
        return map(Relay, self.data, self.messages, self.authors)

    def lights_by_data(self) -> dict[int, bool]:
        """Whether each payload is light, by the id of its bytes (the router's lists hold
        the same objects); those not counted (ours, control payloads) are light."""
        return {id(d): light for d, light in zip(self.data, self.lights, strict=False)}

    def kept(self) -> list[tuple[Message, int]]:
        """The chat messages and their encoded sizes, for keepers."""
        pairs = zip(self.messages, self.data, strict=True)
        return [(m, len(d)) for m, d in pairs if m is not None]


class Check(Protocol):
    def check(self, message: Message, conn: Incoming, now: float) -> str | None: ...


class Control(Protocol):
    def control(self, obj: dict, conn: Incoming, now: float) -> bool: ...


class Linker(Protocol):
    def linked(self, link: Peer, now: float) -> list[bytes]: ...


class Keeper(Protocol):
    def keep(self, messages: Sequence[tuple[Message, int]], own: bool, now: float) -> None: ...


class View(Protocol):
    def view(self, event: Delivered) -> Delivered | None: ...


class Watcher(Protocol):
    def started(self, now: float) -> None: ...
    def link_failed(self, link: Peer, now: float) -> None: ...


class Signer(Protocol):
    def sign(self, message: Message) -> tuple[Message, Any]: ...


class Router(Protocol):
    def route(
        self, batch: Batch, links: Mapping[str, Peer]
    ) -> Iterable[tuple[Peer, Sequence[bytes]]]: ...


class FloodRouter:
    """Every payload to every link but its author's (PROTOCOL.md §5.1 step 7), and to none
    that lacks the capability the batch needs."""

    def route(
        self, batch: Batch, links: Mapping[str, Peer]
    ) -> Iterable[tuple[Peer, Sequence[bytes]]]:
        if not links or not batch.data:
            return ()
        needs, everything = batch.needs, batch.data
        targets = (
            links.values() if needs is None else [p for p in links.values() if needs in p.caps]
        )
        special = links.keys() & set(batch.authors)  # links that wrote some of it: not theirs
        if not special:
            return [(link, everything) for link in targets]
        return [
            (link, everything if link.addr not in special else self._others(link.addr, batch))
            for link in targets
        ]

    @staticmethod
    def _others(addr: str, batch: Batch) -> list[bytes]:
        return [d for d, a in zip(batch.data, batch.authors, strict=True) if a != addr]


class BacklogKeeper:
    """Extension 11: every new message goes into the backlog, replayed on new links."""

    def __init__(self, backlog: Backlog) -> None:
        self.backlog = backlog

    def keep(self, messages: Sequence[tuple[Message, int]], own: bool, now: float) -> None:
        self.backlog.extend(messages)


class FilesView:
    """Extension 10: a file message is checked and kept in memory; the event says what it
    carried; with ``-downloads`` a ``Save`` action writes it (within the run's budget)."""

    def __init__(self, store: FileStore, outbox: Outbox, *, autosave: bool) -> None:
        self.store = store
        self._outbox = outbox
        self._autosave = autosave

    def view(self, event: Delivered) -> Delivered | None:
        if FILE_KEYS.isdisjoint(event.message.fields):  # on every message: no call below
            return event
        file = self.store.receive(event.message)
        if file is None:
            return event
        if type(file) is StoredFile and self._autosave:
            self._save(file)
        return event._replace(file=file)

    def _save(self, file: StoredFile) -> None:
        if self.store.may_autosave(file):
            self._outbox.actions.append(Save(file))
            return
        self._outbox.emit(
            Notice(
                f"file #{file.number} not saved: {human_size(AUTOSAVE_MAX_BYTES)} already "
                f"auto-saved this run (/save {file.number} still works)",
                True,
            )
        )
