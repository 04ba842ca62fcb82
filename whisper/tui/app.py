"""The terminal UI's screen and keys: a prompt_toolkit ``Application`` and nothing else.

Layout, top to bottom: the message area (scrollback), the status line, the input line.

Rules:
- This module knows nothing of trio or the node.  It is given three callables: ``submit``
  (a typed line, called from a key handler), ``status`` (read each time the screen is drawn)
  and a completer; the session (``session.py``) feeds it display lines.
- Only ``render`` builds what is shown, so every peer-controlled string is cleaned there.
- The message area keeps the last ``scrollback`` lines.  It follows new lines until the user
  scrolls up (PgUp); then new lines do not move it, and PgDn back to the bottom follows again.
- Incoming lines never touch the input line: a half-typed line stays as it was.
- Keys: Enter sends; Tab completes (a single match at once, else the common part, then a
  menu that Tab / Shift-Tab walk and Enter takes); Up/Down walk the history; Ctrl-C clears
  a non-empty line and exits at an empty one; Ctrl-D deletes under the cursor and exits at
  an empty line (as shells do); PgUp/PgDn scroll; Ctrl-L redraws.  Exiting only asks the
  ``Application`` to exit; whoever runs it cleans up.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prompt_toolkit.application import Application
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.completion import Completer
from prompt_toolkit.data_structures import Point
from prompt_toolkit.filters import completion_is_selected, has_completions
from prompt_toolkit.formatted_text import fragment_list_len
from prompt_toolkit.history import History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import (
    BufferControl,
    Float,
    FloatContainer,
    FormattedTextControl,
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

SCROLLBACK = 5000
MAX_INPUT_ROWS = 5
REFRESH_INTERVAL = 1.0  # redraw at least this often, so the status counts stay current
MIN_REDRAW_INTERVAL = 0.05  # a flood of messages redraws at most 20 times a second
PROMPT = "> "

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
    }
)


class _Scrollback(UIControl):
    """The message area: a list of display lines and where the view is."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.lines: list[Line] = []
        self.view: int | None = None  # index of the line kept in view; None: follow the end

    def append(self, line: Line) -> None:
        self.lines.append(line)
        extra = len(self.lines) - self.limit
        if extra >= max(1, self.limit // 10):  # trim in chunks: one copy per 10% of the limit
            del self.lines[:extra]
            if self.view is not None:
                self.view = max(0, self.view - extra)

    def clear(self) -> None:
        self.lines.clear()
        self.view = None

    def scroll(self, rows: int) -> None:
        last = len(self.lines) - 1
        current = last if self.view is None else self.view
        target = max(0, current + rows)
        self.view = None if target >= last else target

    def is_focusable(self) -> bool:
        return False

    def create_content(self, width: int, height: int) -> UIContent:
        lines = self.lines
        if not lines:
            return UIContent(line_count=0, show_cursor=False)
        y = len(lines) - 1 if self.view is None else min(self.view, len(lines) - 1)
        # The "cursor" sits at the end of the line to keep in view, so a wrapped last line is
        # shown whole.
        return UIContent(
            get_line=lines.__getitem__,
            line_count=len(lines),
            cursor_position=Point(x=fragment_list_len(lines[y]), y=y),
            show_cursor=False,
        )


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
    ) -> None:
        self._submit = submit
        self._status = status
        self._clock = clock
        self._notice = ("", False)
        self.scrollback = _Scrollback(scrollback)
        self.input = Buffer(
            multiline=False,
            completer=completer,
            complete_while_typing=False,
            history=history or InMemoryHistory(),
            accept_handler=self._accept,
        )
        self._log_window = Window(self.scrollback, wrap_lines=True)
        body = HSplit(
            [
                self._log_window,
                Window(FormattedTextControl(self._status_line), height=1, style="class:status"),
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
        when = self._clock()
        if history and message.timestamp_ms is not None:
            when = message.timestamp_ms / 1000.0
        self._show(render.message_line(message, own=own, when=when, history=history, body=body))

    def show_info(self, lines: list[str], *, warning: bool = False) -> None:
        when = self._clock()
        for text in lines:
            self.scrollback.append(render.info_line(text, when=when, warning=warning))
        self.app.invalidate()

    def notice(self, text: str, *, warning: bool = False) -> None:
        """Show in the status line, and as a line in the message area."""
        self._notice = (f"{render.clock(self._clock())} {text}", warning)
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

    def status_text(self) -> str:
        return render.plain(self._status_line())

    # -- internals ---------------------------------------------------------------------

    def _show(self, line: Line) -> None:
        self.scrollback.append(line)
        self.app.invalidate()

    def _status_line(self) -> Line:
        text, warning = self._notice
        return render.status_line(
            self._status(), text, warning=warning, scrolled=self.scrollback.view is not None
        )

    def _accept(self, buffer: Buffer) -> bool:
        self.scrollback.view = None  # sending something brings the view back to the end
        if buffer.text:
            self._submit(buffer.text)
        return False  # clear the line (it is in the history)

    def _page(self) -> int:
        info = self._log_window.render_info
        return max(1, (info.window_height if info else 10) - 2)

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
            self.scrollback.scroll(-self._page())

        @kb.add("pagedown")
        def _down(event: KeyPressEvent) -> None:
            self.scrollback.scroll(self._page())

        @kb.add("c-l")
        def _redraw(event: KeyPressEvent) -> None:
            event.app.renderer.clear()

        return kb
