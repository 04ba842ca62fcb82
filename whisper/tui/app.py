"""The terminal UI's screen and keys: a prompt_toolkit ``Application`` and nothing else.

Layout, top to bottom: the message area (scrollback), the status line, the input line.

Rules:
- This module knows nothing of trio or the node.  It is given three callables: ``submit``
  (a typed line, called from a key handler), ``status`` (read each time the screen is drawn)
  and a completer; the session (``session.py``) feeds it display lines.
- Only ``render`` builds what is shown, so every peer-controlled string is cleaned there.
- The message area (``scrollback.py``) keeps the last ``scrollback`` lines, wrapped at word
  boundaries under the nick.  It follows new lines until the user scrolls up (PgUp); then
  new lines do not move it, the status line counts them, and PgDn back to the bottom (or
  sending a line) follows again.  PgUp at the top asks for older lines (``older``, given
  by the session, which loads them from the history and hands them to ``show_earlier``).
- A message that mentions our nick (``render.mentions``; not our own, not history) has the
  nick picked out, rings the terminal bell (at most once per ``BELL_INTERVAL``: a flood of
  mentions is one ring) and, while scrolled up, is counted in the status line.
- A message too long to show whole (``render.too_long``) gets a number, and the last
  ``LONG_KEPT`` of them are kept whole: ``show_whole(N)`` (``/show N``) adds it in full and
  puts its first row at the top of the view.
- Incoming lines never touch the input line: a half-typed line stays as it was.
- Keys (``KEYS``, which ``/help`` lists too): Enter sends; Tab completes (a single match at
  once, else the common part, then a menu that Tab / Shift-Tab walk and Enter takes);
  Up/Down walk the history; Ctrl-C clears a non-empty line and exits at an empty one;
  Ctrl-D deletes under the cursor and exits at an empty line (as shells do); PgUp/PgDn
  scroll by a page; Ctrl-L redraws.  Exiting only asks the ``Application`` to exit; whoever
  runs it cleans up.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from prompt_toolkit.application import Application
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.completion import Completer
from prompt_toolkit.filters import completion_is_selected, has_completions
from prompt_toolkit.history import History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import (
    BufferControl,
    Float,
    FloatContainer,
    HSplit,
    Layout,
    UIContent,
    UIControl,
    Window,
)
from prompt_toolkit.layout.dimension import Dimension
from prompt_toolkit.layout.menus import CompletionsMenu
from prompt_toolkit.layout.processors import BeforeInput
from prompt_toolkit.output import Output
from prompt_toolkit.styles import Style

from ..message import Message
from . import render
from .render import Line, Status
from .scrollback import Scrollback

SCROLLBACK = 5000
SCROLLBACK_CHARS = 4_000_000
LONG_KEPT = 20
BELL_INTERVAL = 5.0
MAX_INPUT_ROWS = 5
REFRESH_INTERVAL = 1.0  # redraw at least this often, so the status counts stay current
MIN_REDRAW_INTERVAL = 0.05  # a flood of messages redraws at most 20 times a second
PROMPT = "> "

#: The keys, as /help lists them (README.md has the same table).
KEYS = (
    ("Enter", "send the line; a line starting with / is a command, //text sends /text"),
    ("Tab", "complete a command, a nick, or a peer address after /connect and /disconnect"),
    ("Up / Down", "walk the input history, kept across runs"),
    ("PgUp / PgDn", "scroll the messages by a page; back at the bottom, new ones show again"),
    ("PgUp at top", "load older messages from the history (-history)"),
    ("Ctrl-C", "clear the line; at an empty line, leave"),
    ("Ctrl-D", "leave (at an empty line; otherwise delete under the cursor)"),
    ("Ctrl-L", "redraw the screen"),
)


def key_help() -> list[str]:
    width = max(len(key) for key, _ in KEYS)
    return ["keys:", *(f"{key:<{width}}  {what}" for key, what in KEYS)]


STYLE = Style.from_dict(
    {
        "time": "ansibrightblack",
        "nick": "",
        "action": "italic",
        "history": "ansibrightblack",
        "info": "ansibrightblack",
        "warning": "ansiyellow",
        "prompt": "bold",
        "status": "reverse",
        "status.nick": "reverse bold",
        "status.notice": "reverse",
        "status.warning": "reverse ansiyellow",
        "status.more": "reverse bold",
        "mention": "reverse bold",
        "more": "ansibrightblack",
    }
)


class _Fitted(UIControl):
    """A one-row control drawn for its width (the status line)."""

    def __init__(self, line: Callable[[int], Line]) -> None:
        self.line = line

    def is_focusable(self) -> bool:
        return False

    def create_content(self, width: int, height: int) -> UIContent:
        row = self.line(width)
        return UIContent(get_line=lambda i: row, line_count=1, show_cursor=False)


@dataclass(frozen=True, slots=True)
class _Long:
    """A message cut short, kept whole for ``/show``."""

    message: Message
    own: bool
    history: bool
    body: str | None
    when: float


class ChatUI:
    def __init__(
        self,
        *,
        submit: Callable[[str], None],
        status: Callable[[], Status],
        completer: Completer | None = None,
        history: History | None = None,
        input: Input | None = None,
        output: Output | None = None,
        clock: Callable[[], float] = time.time,
        scrollback: int = SCROLLBACK,
        older: Callable[[], None] | None = None,
    ) -> None:
        """``older``: called (from a key handler) when PgUp is pressed at the top."""
        self._submit = submit
        self._older = older
        self._status = status
        self._clock = clock
        self._notice = ("", False)
        self._rang = -BELL_INTERVAL
        self._long: OrderedDict[int, _Long] = OrderedDict()
        self._long_count = 0
        self.scrollback = Scrollback(scrollback, SCROLLBACK_CHARS)
        self.input = Buffer(
            multiline=False,
            completer=completer,
            complete_while_typing=False,
            history=history or InMemoryHistory(),
            accept_handler=self._accept,
        )
        body = HSplit(
            [
                Window(self.scrollback),
                Window(_Fitted(self._status_line), height=1, style="class:status"),
                Window(
                    BufferControl(
                        self.input, input_processors=[BeforeInput(PROMPT, style="class:prompt")]
                    ),
                    height=Dimension(min=1, max=MAX_INPUT_ROWS),
                    dont_extend_height=True,
                    wrap_lines=True,
                ),
            ]
        )
        root = FloatContainer(
            body,
            floats=[
                Float(xcursor=True, ycursor=True, content=CompletionsMenu(max_height=8)),
            ],
        )
        self.app: Application[None] = Application(
            layout=Layout(root, focused_element=self.input),
            key_bindings=self._key_bindings(),
            style=STYLE,
            full_screen=True,
            input=input,
            output=output,
            refresh_interval=REFRESH_INTERVAL,
            min_redraw_interval=MIN_REDRAW_INTERVAL,
        )

    # -- what the session calls --------------------------------------------------------

    def show_message(
        self, message: Message, *, own: bool, history: bool = False, body: str | None = None
    ) -> None:
        """``history``: shown marked, with the time it was written; ``body``: shown instead
        of the Body (a file message)."""
        line, mention = self._message_line(message, own, history, body)
        self.scrollback.append(line, message=True, mention=mention)
        if mention and not history:
            self._ring()
        self.app.invalidate()

    def show_earlier(self, messages: list[tuple[Message, bool]], header: str) -> int:
        """Older messages (``(message, own)``, oldest first) from the history, marked as
        history, put above everything under ``header``; the view moves up a page into
        them.  Returns how many fitted in the scrollback."""
        lines = [self._message_line(m, own, True, None)[0] for m, own in messages]
        lines.insert(0, render.info_line(header, when=self._clock()))
        fitted = self.scrollback.prepend(lines)
        if fitted:
            self.scrollback.scroll(-self.scrollback.page())
        self.app.invalidate()
        return max(0, fitted - 1) if fitted == len(lines) else fitted

    def _message_line(
        self, message: Message, own: bool, history: bool, body: str | None
    ) -> tuple[Line, bool]:
        when = self._clock()
        if history and message.timestamp_ms is not None:
            when = message.timestamp_ms / 1000.0
        text = message.body if body is None else body
        me = self._status().nick
        mention = not own and render.mentions(text, me)
        number = None
        if render.too_long(text):
            number = self._keep_long(_Long(message, own, history, body, when))
        line = render.message_line(
            message, own=own, when=when, history=history, body=body, me=me, number=number
        )
        return line, mention

    def show_whole(self, number: int) -> None:
        """``/show N``: message N in full, its first row at the top of the view."""
        kept = self._long.get(number)
        if kept is None:
            if 1 <= number <= self._long_count:
                why = f"only the last {LONG_KEPT} long messages are kept"
            else:
                why = "a message cut short ends in '/show N'"
            self.show_info([f"no message #{number} to show: {why}"], warning=True)
            return
        line = render.message_line(
            kept.message,
            own=kept.own,
            when=kept.when,
            history=kept.history,
            body=kept.body,
            me=self._status().nick,
            full=True,
        )
        self.scrollback.hold_at(self.scrollback.append(line))
        self.app.invalidate()

    def show_info(self, lines: list[str], *, warning: bool = False) -> None:
        when = self._clock()
        for text in lines:
            self.scrollback.append(render.info_line(text, when=when, warning=warning))
        self.app.invalidate()

    def notice(self, text: str, *, warning: bool = False, chat: bool = True) -> None:
        """Show in the status line, and (``chat``) as a line in the message area."""
        self._notice = (f"{render.clock(self._clock())} {text}", warning)
        if chat:
            self.show_info([text], warning=warning)

    def clear(self) -> None:
        self.scrollback.clear()
        self.app.invalidate()

    def exit(self) -> None:
        if self.app.is_running and not self.app.is_done:
            self.app.exit()

    # -- views for tests and tools -----------------------------------------------------

    def log_text(self) -> list[str]:
        return render.plain_lines(self.scrollback.lines)

    def status_text(self, width: int = 1000) -> str:
        return render.plain(self._status_line(width))

    # -- internals ---------------------------------------------------------------------

    def _keep_long(self, kept: _Long) -> int:
        self._long_count += 1
        self._long[self._long_count] = kept
        while len(self._long) > LONG_KEPT:
            self._long.popitem(last=False)
        return self._long_count

    def _ring(self) -> None:
        now = self._clock()
        if now - self._rang >= BELL_INTERVAL:
            self._rang = now
            self.app.output.bell()

    def _status_line(self, width: int) -> Line:
        text, warning = self._notice
        scrollback = self.scrollback
        return render.status_line(
            self._status(),
            text,
            warning=warning,
            scrolled=scrollback.view is not None,
            unread=scrollback.unread,
            mentioned=scrollback.mentioned,
            width=width,
        )

    def _accept(self, buffer: Buffer) -> bool:
        self.scrollback.follow()  # sending something brings the view back to the end
        if buffer.text:
            self._submit(buffer.text)
        return False  # clear the line (it is in the history)

    def _key_bindings(self) -> KeyBindings:
        kb = KeyBindings()

        @kb.add("c-c")
        def _interrupt(event: KeyPressEvent) -> None:
            if self.input.text:
                self.input.reset()
            else:
                self.exit()

        @kb.add("c-d")
        def _eof(event: KeyPressEvent) -> None:
            if self.input.text:
                self.input.delete()
            else:
                self.exit()

        @kb.add("enter", filter=completion_is_selected)
        def _take_completion(event: KeyPressEvent) -> None:
            self.input.complete_state = None

        @kb.add("tab")
        def _complete(event: KeyPressEvent) -> None:
            if self.input.complete_state:
                self.input.complete_next()
            else:
                self.input.start_completion(insert_common_part=True)

        @kb.add("s-tab", filter=has_completions)
        def _complete_back(event: KeyPressEvent) -> None:
            self.input.complete_previous()

        @kb.add("pageup")
        def _up(event: KeyPressEvent) -> None:
            if self._older is not None and self.scrollback.at_top():
                self._older()  # past the top: older lines from the history, if any
            self.scrollback.scroll(-self.scrollback.page())

        @kb.add("pagedown")
        def _down(event: KeyPressEvent) -> None:
            self.scrollback.scroll(self.scrollback.page())

        @kb.add("c-l")
        def _redraw(event: KeyPressEvent) -> None:
            event.app.renderer.clear()

        return kb
