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
- A body is shown whole up to ``FULL_CHARS`` characters (a 3,000-character paste is read
  in full, wrapped).  A longer one, which fills screens, shows its first ``PREVIEW_CHARS``
  and then ``… (N more characters: /show K)``; ``full=True`` shows it all (``/show``).
  A nick is cut to ``NICK_WIDTH`` characters, marked with an ellipsis.
- Our nick in someone else's message (a whole word, any case: ``Phil:``, ``@phil``, not
  ``philosophy``) is a mention, shown in ``class:mention``; ``mentions`` tells the app.
- The body (text after ``<nick> ``, ``* nick `` or ``-!- ``) carries ``class:body``, which
  is where a wrapped line's hanging indent ends (``wrap.py``).
- The status line fits its width: nick and peer counts always, the scroll marker (shorter
  when narrow), how many people are online (presence) and the address only where there is
  room for them and a bit of the notice, which gets the rest, cut with an ellipsis.
- ... nor stall it: ``clean`` keeps at most ``MAX_ZERO_WIDTH`` zero-width characters
  (combining marks ...) in a row.  prompt_toolkit merges each into the cell before it by
  concatenation, quadratic in the run: 2,000 marks after one letter took 0.13 s per redraw, on
  the thread the node runs on.  Every string is cut before it is cleaned.
- Fragments carry style classes only (``class:time`` ...); ``app.STYLE`` maps them to colours.
"""

from __future__ import annotations

import functools
import re
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from prompt_toolkit.formatted_text import StyleAndTextTuples, fragment_list_to_text
from prompt_toolkit.utils import get_cwidth

from ..message import Message
from ..sanitize import for_terminal
from .wrap import BODY_CLASS, cells

NICK_WIDTH = 24
MAX_ZERO_WIDTH = 16  # more than any script or emoji sequence needs (Unicode's stream-safe: 30)
FULL_CHARS = 10_000
PREVIEW_CHARS = 2_000
ACTION_PREFIX = "/me "
HISTORY_MARK = "[history] "
MIN_NOTICE = 16  # cells of the notice worth keeping before the address is left out

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
    online: int = 0  # people, ourselves included (presence); 0: not shown


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


def too_long(body: str) -> bool:
    """Cut short unless shown ``full`` (see the module rules)?"""
    return len(body.removeprefix(ACTION_PREFIX)) > FULL_CHARS


@functools.lru_cache(maxsize=8)
def _mention_pattern(nick: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(nick)}(?!\w)", re.IGNORECASE)


def mentions(body: str, nick: str) -> bool:
    """Does ``body`` (a Body as received) name ``nick`` as a whole word, where it is shown?"""
    body = body.removeprefix(ACTION_PREFIX)
    return bool(nick) and _mention_pattern(clean(nick)).search(clean(body)) is not None


def _body(text: str, style: str, me: str) -> Line:
    """The body's fragments, our nick picked out in ``class:mention``."""
    style = f"{style} {BODY_CLASS}".strip()
    if not me:
        return [(style, text)]
    fragments: Line = []
    at = 0
    for match in _mention_pattern(me).finditer(text):
        if match.start() > at:
            fragments.append((style, text[at : match.start()]))
        fragments.append((f"{style} class:mention", match.group()))
        at = match.end()
    if at < len(text) or not fragments:
        fragments.append((style, text[at:]))
    return fragments


def message_line(
    message: Message,
    *,
    own: bool,
    when: float,
    history: bool = False,
    body: str | None = None,
    me: str = "",
    number: int | None = None,
    full: bool = False,
) -> Line:
    """``me``: our nick, picked out where the message mentions it (not in our own);
    ``number``: what ``/show`` calls this message if it is cut short; ``full``: never cut."""
    nick = display_nick(message)
    nick_style = f"class:nick fg:{nick_colour(nick)}" + (" bold" if own else "")
    body = message.body if body is None else body
    action = body.startswith(ACTION_PREFIX)
    if action:
        body = body[len(ACTION_PREFIX) :]
    more = ""
    if len(body) > FULL_CHARS and not full:
        show = "" if number is None else f": /show {number}"
        more = f"\u2026 ({len(body) - PREVIEW_CHARS:,} more characters{show})"
        body = body[:PREVIEW_CHARS]
    text = _body(clean(body), "class:action" if action else "", "" if own else clean(me))
    if more:
        text.append(("class:more " + BODY_CLASS, more))
    stamp: Line = [("class:time", clock(when) + " ")]
    if history:
        stamp.append(("class:history", HISTORY_MARK))
    if action:
        return [*stamp, ("class:action", "* "), (nick_style, nick), ("class:action", " "), *text]
    return [*stamp, ("class:nick", "<"), (nick_style, nick), ("class:nick", "> "), *text]


def info_line(text: str, *, when: float, warning: bool = False) -> Line:
    """A line from us, not from a peer: a command's reply, a notice."""
    style = "class:warning" if warning else "class:info"
    return [
        ("class:time", clock(when) + " "),
        (style, "-!- "),
        (f"{style} {BODY_CLASS}", clean(text)),
    ]


def _more_marker(unread: int, mentioned: int, *, short: bool) -> str:
    """What the status line says while the view is scrolled up."""
    if short:
        news = f"{unread} new" + (f", @{mentioned}" if mentioned else "") + " " if unread else ""
        return f" [{news}PgDn] "
    if not unread:
        return " -- more below (PgDn) -- "
    plural = "s" if mentioned > 1 else ""
    you = f", {mentioned} mention{plural} of you" if mentioned else ""
    return f" -- {unread} new{you} (PgDn) -- "


def _cut_cells(text: str, room: int) -> str:
    """``text`` in at most ``room`` cells, an ellipsis marking a cut."""
    if cells(text) <= room:
        return text
    out, used = [], 0
    for char in text:
        w = cells(char)
        if used + w > room - 1:
            break
        out.append(char)
        used += w
    return "".join(out) + "\u2026" if room > 0 else ""


def status_line(
    status: Status,
    notice: str,
    *,
    warning: bool,
    scrolled: bool,
    unread: int = 0,
    mentioned: int = 0,
    width: int = 1000,
) -> Line:
    """The status line in ``width`` cells (see the module rules)."""
    nick = _cut(clean(status.nick), NICK_WIDTH) or "(no nick)"
    nick = f" {_cut_cells(nick, max(8, width // 3))} "
    counts = f" out {status.outgoing} in {status.incoming} "
    addr = f" {clean(status.addr)} "
    notice = f" {clean(notice)}" if notice else ""
    fixed = cells(nick) + cells(counts)
    marker = _more_marker(unread, mentioned, short=False) if scrolled else ""
    if marker and fixed + cells(marker) + MIN_NOTICE > width:
        marker = _more_marker(unread, mentioned, short=True)
    fixed += cells(marker)
    online = f" {status.online} online " if status.online else ""  # dropped first
    if online and fixed + cells(online) + MIN_NOTICE > width:
        online = ""
    fixed += cells(online)
    if fixed + cells(addr) + min(cells(notice), MIN_NOTICE) > width:
        addr = ""
    line: Line = [("class:status.nick", nick), ("class:status", addr + counts + online)]
    if marker:
        line.append(("class:status.more", marker))
    room = width - fixed - cells(addr)
    if notice and room > 1:
        style = "class:status.warning" if warning else "class:status.notice"
        line.append((style, _cut_cells(notice, room)))
    return line


def plain(line: Line) -> str:
    return fragment_list_to_text(line)


def plain_lines(lines: Iterable[Line]) -> list[str]:
    return [plain(line) for line in lines]
