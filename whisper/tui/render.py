"""Display lines for the terminal UI: pure functions from events to styled fragments.

Rules:
- Every string that a peer controls (Body, Nick, Addr), and every other string we show, goes
  through ``clean``: ``sanitize.for_terminal`` (no control characters, escape sequences or
  bidi overrides survive) and then any lone surrogate becomes U+FFFD, so the text can always
  be encoded for the terminal.  Unicode text (CJK, emoji, right-to-left) is kept as written.
- A chat line is ``HH:MM <nick> body``: local time when it was shown, the nick in a colour
  that is a stable function of the nick (CRC-32 into a 12-colour ANSI palette, the same on
  every run and machine), then the body.  Our own lines show our nick in bold.
- A Body starting with ``/me `` is an action (PROTOCOL.md §2.4): ``HH:MM * nick TEXT``.
- History (a backlog replay, extension 11) is ``HH:MM [history] <nick> body``, with the time
  it was written; a file message shows the text ``display.shown_body`` gives for it.
- Display limits, so no peer can flood the screen with one message: a nick is cut to
  ``NICK_WIDTH`` characters and a body to ``BODY_CHARS``, each marked with an ellipsis.
- ... nor stall it: ``clean`` keeps at most ``MAX_ZERO_WIDTH`` zero-width characters
  (combining marks ...) in a row.  prompt_toolkit merges each into the cell before it by
  concatenation, quadratic in the run: 2,000 marks after one letter took 0.13 s per redraw, on
  the thread the node runs on.  Every string is cut before it is cleaned.
- Fragments carry style classes only (``class:time`` ...); ``app.STYLE`` maps them to colours.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from prompt_toolkit.formatted_text import StyleAndTextTuples, fragment_list_to_text
from prompt_toolkit.utils import get_cwidth

from ..message import Message
from ..sanitize import for_terminal

NICK_WIDTH = 24
BODY_CHARS = 2000
MAX_ZERO_WIDTH = 16  # more than any script or emoji sequence needs (Unicode's stream-safe: 30)
ACTION_PREFIX = "/me "
HISTORY_MARK = "[history] "

#: Foreground colours for nicks: readable on dark and light backgrounds, 16-colour safe.
PALETTE = (
    "ansired",
    "ansigreen",
    "ansiyellow",
    "ansiblue",
    "ansimagenta",
    "ansicyan",
    "ansibrightred",
    "ansibrightgreen",
    "ansibrightyellow",
    "ansibrightblue",
    "ansibrightmagenta",
    "ansibrightcyan",
)

Line = StyleAndTextTuples

_SURROGATE = re.compile("[\ud800-\udfff]")
# Once controls are pictures, every zero-width character is at U+0300 or above: only such runs
# can hold too many in a row, and only they are looked at one by one.
_LONG_RUN = re.compile(f"[^\\x00-\\u02ff]{{{MAX_ZERO_WIDTH + 1},}}")


@dataclass(frozen=True, slots=True)
class Status:
    """What the status line shows about the node (read when the screen is drawn)."""

    nick: str
    addr: str
    outgoing: int
    incoming: int


def clean(text: str) -> str:
    """Text safe to put on a terminal line (see the module rules)."""
    return _LONG_RUN.sub(_limit_zero_width, _SURROGATE.sub("\ufffd", for_terminal(text)))


def _limit_zero_width(run: re.Match[str]) -> str:
    kept: list[str] = []
    zero = 0
    for char in run.group():
        if get_cwidth(char) == 0:
            zero += 1
            if zero > MAX_ZERO_WIDTH:
                continue
        else:
            zero = 0
        kept.append(char)
    return "".join(kept)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def clock(when: float) -> str:
    return time.strftime("%H:%M", time.localtime(when))


def nick_colour(nick: str) -> str:
    return PALETTE[zlib.crc32(nick.encode("utf-8", "surrogatepass")) % len(PALETTE)]


def display_nick(message: Message) -> str:
    """The sender as shown: nick (or Addr when there is none), cleaned and cut."""
    return _cut(clean(_cut(message.sender, 4 * NICK_WIDTH)), NICK_WIDTH)


def message_line(
    message: Message,
    *,
    own: bool,
    when: float,
    history: bool = False,
    body: str | None = None,
) -> Line:
    nick = display_nick(message)
    nick_style = f"class:nick fg:{nick_colour(nick)}" + (" bold" if own else "")
    body = message.body if body is None else body
    action = body.startswith(ACTION_PREFIX)
    if action:
        body = body[len(ACTION_PREFIX) :]
    if len(body) > BODY_CHARS:
        body = f"{body[:BODY_CHARS]}\u2026 ({len(body) - BODY_CHARS} more characters)"
    text = clean(body)
    stamp: Line = [("class:time", clock(when) + " ")]
    if history:
        stamp.append(("class:history", HISTORY_MARK))
    if action:
        return [*stamp, ("class:action", "* "), (nick_style, nick), ("class:action", " " + text)]
    return [*stamp, ("class:nick", "<"), (nick_style, nick), ("class:nick", "> "), ("", text)]


def info_line(text: str, *, when: float, warning: bool = False) -> Line:
    """A line from us, not from a peer: a command's reply, a notice."""
    style = "class:warning" if warning else "class:info"
    return [("class:time", clock(when) + " "), (style, "-!- " + clean(text))]


def status_line(status: Status, notice: str, *, warning: bool, scrolled: bool) -> Line:
    nick = _cut(clean(status.nick), NICK_WIDTH) or "(no nick)"
    line: Line = [
        ("class:status.nick", f" {nick} "),
        ("class:status", f" {clean(status.addr)}  out {status.outgoing} in {status.incoming} "),
    ]
    if scrolled:
        line.append(("class:status.more", " -- more below (PgDn) -- "))
    if notice:
        style = "class:status.warning" if warning else "class:status.notice"
        line.append((style, " " + clean(notice)))
    return line


def plain(line: Line) -> str:
    return fragment_list_to_text(line)


def plain_lines(lines: Iterable[Line]) -> list[str]:
    return [plain(line) for line in lines]
