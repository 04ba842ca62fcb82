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
  - ``Keeper.keep(message, size, own, now)``: every new chat message, ours and accepted
    ones, once.  For the backlog and a history store.
  - ``View.view(event)``: what front ends are shown of an accepted message: the event,
    another one (annotated, decrypted), or None to show nothing.  Relaying is not affected.
    For files, channel filters and decryption.
  - ``Router.route(batch, links)``: which links get which of a batch of new payloads.

- Stages are plain synchronous objects fed the time; those that need to act (write to one
  link, dial, tell the front ends) are given the engine when built and call its methods.
- A ``Relay`` names a payload's author link (``author``: the link to its ``Addr``, never
  written to) and the capability a link must have announced to be sent it (``needs``: a
  ``Body``-less payload must reach only peers that speak it; the Go peer crashes on one).
- ``FloodRouter``, the default, sends each payload to every other link, and gives the
  links that get the same payloads the same list, so that the engine joins it once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

from ..backlog import Backlog
from ..events import Delivered, Notice
from ..files import AUTOSAVE_MAX_BYTES, FileStore, StoredFile, human_size
from ..message import Message
from .actions import Outbox, Save

if TYPE_CHECKING:
    from ..peers import Peer
    from .incoming import Incoming


class Relay(NamedTuple):
    """One payload to route: its encoded bytes and where it must not, or may only, go."""

    data: bytes
    message: Message | None = None  # None for a control payload
    author: str | None = None  # key of the author's link (its canonical Addr)
    source: Incoming | None = None  # the connection it came in on; None: ours
    needs: str | None = None  # a capability the link must have


class Check(Protocol):
    def check(self, message: Message, conn: Incoming, now: float) -> str | None: ...


class Control(Protocol):
    def control(self, obj: dict, conn: Incoming, now: float) -> bool: ...


class Keeper(Protocol):
    def keep(self, message: Message, size: int, own: bool, now: float) -> None: ...


class View(Protocol):
    def view(self, event: Delivered) -> Delivered | None: ...


class Router(Protocol):
    def route(
        self, batch: Sequence[Relay], links: Mapping[str, Peer]
    ) -> Iterable[tuple[Peer, Sequence[bytes]]]: ...


class FloodRouter:
    """Every payload to every link but its author's (PROTOCOL.md §5.1 step 7)."""

    def route(
        self, batch: Sequence[Relay], links: Mapping[str, Peer]
    ) -> Iterable[tuple[Peer, Sequence[bytes]]]:
        if not links or not batch:
            return ()
        special = {r.author for r in batch if r.author in links}
        if any(r.needs is not None for r in batch):
            return [(link, self._for(link, batch)) for link in links.values()]
        everything = [r.data for r in batch]
        return [
            (link, everything if addr not in special else self._for(link, batch))
            for addr, link in links.items()
        ]

    @staticmethod
    def _for(link: Peer, batch: Sequence[Relay]) -> list[bytes]:
        addr, caps = link.addr, link.caps
        return [r.data for r in batch if r.author != addr and (r.needs is None or r.needs in caps)]


class BacklogKeeper:
    """Extension 11: every new message goes into the backlog, replayed on new links."""

    def __init__(self, backlog: Backlog) -> None:
        self.backlog = backlog

    def keep(self, message: Message, size: int, own: bool, now: float) -> None:
        self.backlog.add(message, size)


class FilesView:
    """Extension 10: a file message is checked and kept in memory; the event says what it
    carried; with ``-downloads`` a ``Save`` action writes it (within the run's budget)."""

    def __init__(self, store: FileStore, outbox: Outbox, *, autosave: bool) -> None:
        self.store = store
        self._outbox = outbox
        self._autosave = autosave

    def view(self, event: Delivered) -> Delivered | None:
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
