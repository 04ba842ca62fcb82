"""The terminal UI's session: one node and one screen, joined on the trio side.

Rules:
- The session uses the node only as every front end does: events from ``Node.subscribe()``,
  typed lines through ``commands.execute``, and snapshots (nick, address, ``peers()``).
- Typed lines come from key handlers (the asyncio side) through ``TrioToken.run_sync_soon``
  into an unbounded channel (a person types them) and are executed in order on the trio
  side.  A pasted block of several lines is executed line by line.  What a reply leaves to
  the display is done here: ``/clear``, ``/show N``, and the keys after ``/help``.
- Every ``Delivered`` event is shown, our own included (that is the local echo); nicks heard
  are remembered for completion.  History and files are shown as ``display.py`` says.
  Any other event (a notice, a peer linked or lost ...) goes, as its ``text``, to the
  status line and the message area (``render`` cleans every string shown); a link that
  came up or was closed cleanly (``LINK_EVENTS``, not warnings) to the status line only.
- With a history (``-history``), the screen opens with its last ``EARLIER`` messages,
  marked as earlier; PgUp at the top loads the ``EARLIER`` before those (``page`` with the
  oldest shown ``seq`` as the cursor), one load at a time, until the history has no older
  ones or the scrollback is full (a notice says which).
- ``/quit``, SIGINT, SIGTERM and SIGHUP end the run, saying goodbye (presence, at most
  ``node.GOODBYE_GRACE``) and closing every connection; the node
  failing ends it with the node's error.
- ``notes`` (called once the node runs) are notices shown after the welcome: the web
  interface's address (``-http``), printed before the screen opened and hidden by it.
- ``run_tui`` is the entry point: while the screen is up, the ``whisper`` loggers do not
  write to the terminal (it would corrupt the screen).  With ``show_log`` their records are
  shown in the message area (rate-limited as on stderr, ``loglimit.py``); otherwise notices
  tell the user what matters.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import signal
import time
from collections.abc import Callable, Iterator

import trio
from prompt_toolkit.history import History
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output

from ..commands import execute
from ..display import identity_marks, shown_body, shown_sender, take_batch
from ..events import Delivered, Event, GaveUp, PeerLinked, PeerLost
from ..loglimit import RepeatLimit
from ..node import Node
from ..store.errors import HistoryError
from ..subscription import Subscription
from . import guest
from .app import ChatUI, key_help
from .completion import ChatCompleter, KnownNicks
from .history import PersistentHistory, default_path
from .render import Status

STOP_SIGNALS = tuple(
    s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None
)

log = logging.getLogger("whisper.tui")

#: Messages of the history shown as earlier when the terminal UI opens (about a screenful).
EARLIER = 50


def run_tui(
    node: Node,
    *,
    show_log: bool = False,
    history: History | None = None,
    notes: Callable[[], list[str]] | None = None,
) -> None:
    """Run the node under the terminal UI until the user leaves.  Blocks; see module rules."""
    session = Session(node, history=history or PersistentHistory(default_path()), notes=notes)
    with _log_to_screen(session.ui, show_log):
        guest.run(session.run, session.ui.app)


class Session:
    def __init__(
        self,
        node: Node,
        *,
        history: History | None = None,
        input: Input | None = None,
        output: Output | None = None,
        clock: Callable[[], float] = time.time,
        notes: Callable[[], list[str]] | None = None,
    ) -> None:
        self.node = node
        self._notes = notes
        self.nicks = KnownNicks()
        self._token: trio.lowlevel.TrioToken | None = None
        self._typed: trio.MemorySendChannel[str] | None = None
        self._nursery: trio.Nursery | None = None
        self._older: int | None = None  # the history holds messages before this seq
        self._loading = False
        self.ui = ChatUI(
            submit=self.submit,
            status=self.status,
            completer=ChatCompleter(
                self.nicks.recent, lambda: [p.addr for p in node.peers() if p.outgoing]
            ),
            history=history,
            input=input,
            output=output,
            clock=clock,
            older=self.load_older,
        )

    def status(self) -> Status:
        peers = self.node.peers()
        out = sum(p.outgoing and p.connected for p in peers)
        incoming = sum(not p.outgoing for p in peers)
        return Status(self.node.nick, self.node.addr, out, incoming, len(self.node.users()))

    def submit(self, text: str) -> None:
        """A line the user typed (called on the asyncio side): run it on the trio side."""
        if self._token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._enqueue, text)

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the node and the session until /quit, a signal or cancellation."""
        self._token = trio.lowlevel.current_trio_token()
        send, typed = trio.open_memory_channel[str](math.inf)
        self._typed = send
        with self.node.subscribe() as events:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self._show_earlier()  # before anything new can be shown
                addr = await nursery.start(self.node.run)
                nursery.start_soon(self._show_events, events)
                nursery.start_soon(_stop_on_signal, nursery.cancel_scope, self.node)
                self.ui.show_info(self._welcome())
                for note in self._notes() if self._notes is not None else []:
                    self.ui.notice(note)  # the web's address, printed before the screen opened
                task_status.started(addr)
                await self._execute(typed)
                await self.node.farewell()  # /quit, Ctrl-D: a clean exit says goodbye
                nursery.cancel_scope.cancel()

    async def _show_earlier(self) -> None:
        """The last screenful of the history (``-history``), marked as earlier."""
        history = self.node.history
        if history is None or not history.on:
            return
        earlier = await history.page(limit=EARLIER)
        if not earlier:
            return
        self._older = earlier[0].seq
        self.ui.show_info([f"-- earlier: the last {len(earlier)} messages of the history --"])
        for s in earlier:
            self.ui.show_message(s.message, own=s.own, history=True, body=s.message.body)
        self.ui.show_info(["-- end of the earlier messages (PgUp at the top for more) --"])

    def load_older(self) -> None:
        """PgUp at the top (called on the asyncio side): load older messages, on the trio
        side."""
        if self._token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._start_loading)

    def _start_loading(self) -> None:
        if self._nursery is not None and not self._loading and self._older is not None:
            self._loading = True
            self._nursery.start_soon(self._load_older)

    async def _load_older(self) -> None:
        history = self.node.history
        try:
            if history is None or not history.on or self._older is None:
                return
            page = await history.page(before=self._older, limit=EARLIER)
            if not page:
                self._older = None
                self.ui.notice("the history holds no older messages", chat=False)
                return
            header = f"-- earlier: {len(page)} more messages of the history --"
            fitted = self.ui.show_earlier([(s.message, s.own) for s in page], header)
            if fitted < len(page):
                self._older = None
                self.ui.notice("the scrollback is full: /search finds older messages", warning=True)
            else:
                self._older = page[0].seq
        except HistoryError as exc:
            self.ui.notice(f"history: {exc}", warning=True)
        finally:
            self._loading = False

    def _enqueue(self, text: str) -> None:
        if self._typed is not None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                self._typed.send_nowait(text)

    async def _execute(self, typed: trio.MemoryReceiveChannel[str]) -> None:
        async for text in typed:
            for line in text.split("\n"):
                reply = await execute(self.node, line)
                if reply.clear:
                    self.ui.clear()
                if reply.lines:
                    self.ui.show_info(reply.lines)
                if reply.help:
                    self.ui.show_info(key_help())
                if reply.show is not None:
                    self.ui.show_whole(reply.show)
                if reply.quit:
                    return

    async def _show_events(self, events: Subscription) -> None:
        async for first in events:
            # Take all that is waiting (a receive per event is slow); history in time order.
            for event in await take_batch(events, [first]):
                self._show(event)

    def _show(self, event: Event) -> None:
        if type(event) is Delivered:
            if not event.own and event.message.nick:
                self.nicks.heard(event.message.nick)
            body, marks = shown_body(event), identity_marks(event)  # extension 13's marks
            if marks:  # first, or after an action's /me: "* bob [unsigned] waves"
                action = event.file is None and body.startswith("/me ")
                body = f"/me {marks}{body[4:]}" if action else marks + body
            message = event.message
            if event.ident is not None and event.ident.direct:  # the nick is inside a DM
                message = dataclasses.replace(message, nick=shown_sender(event))
            self.ui.show_message(message, own=event.own, history=event.history, body=body)
        else:  # a link up or closed cleanly is not chat: the status line only
            link = isinstance(event, LINK_EVENTS) and not event.warning
            self.ui.notice(event.text, warning=event.warning, chat=not link)

    def _welcome(self) -> list[str]:
        who = f"you are {self.node.nick}" if self.node.nick else "you have no nick (/nick NAME)"
        return [f"{who}, listening on {self.node.addr}", "/help lists the commands; Ctrl-D leaves"]


#: Link-level events (issue 13): shown in the message area only when they are warnings.
LINK_EVENTS = (PeerLinked, PeerLost, GaveUp)


async def _stop_on_signal(scope: trio.CancelScope, node: Node) -> None:
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async for signum in signals:
            log.info("%s: closing connections", signal.Signals(signum).name)
            await node.farewell()  # presence: a clean exit says goodbye
            scope.cancel()
            return


class _ScreenHandler(logging.Handler):
    def __init__(self, ui: ChatUI) -> None:
        super().__init__()
        self.ui = ui
        self.addFilter(RepeatLimit())

    def emit(self, record: logging.LogRecord) -> None:
        self.ui.show_info([self.format(record)], warning=record.levelno >= logging.WARNING)


@contextlib.contextmanager
def _log_to_screen(ui: ChatUI, show: bool) -> Iterator[None]:
    logger = logging.getLogger("whisper")
    saved, propagate = logger.handlers[:], logger.propagate
    logger.handlers = [_ScreenHandler(ui) if show else logging.NullHandler()]
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers, logger.propagate = saved, propagate
