"""Laying a display line out on the screen's width: rows, broken at word boundaries.

Rules:
- A line is broken at spaces; a word is never split unless it is wider than a row by itself
  (a long URL, a paste with no spaces), and then it is split at character boundaries.
  A wide character (CJK) is a word of its own, so such text breaks between any two.
  Spaces where a row breaks are dropped, at the end of the row and at the start of the next.
- Rows after the first start with a hanging indent: as wide as what precedes the line's
  body (``HH:MM <nick> ``), the first fragment whose style holds ``class:body``, so a
  wrapped message reads as a block under the nick.  An indent over half the width falls
  back to ``FALLBACK_INDENT`` (under the time), or none on a very narrow screen.
- Widths are terminal cells (``get_cwidth``: 2 for CJK and most emoji, 0 for combining
  marks); no row is wider than the width, except for a single character wider than it.
- Pure: fragments in, rows of fragments out; styles are carried over unchanged.  Text is
  assumed clean (``render.clean``): no tabs, newlines or control characters.
"""

from __future__ import annotations

import re

from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.utils import get_cwidth

Line = StyleAndTextTuples

BODY_CLASS = "class:body"
FALLBACK_INDENT = 6  # "HH:MM "

_WIDE = (
    "\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf"
    "\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6"
    "\U00020000-\U0003fffd"
)
_PIECES = re.compile(f"( +)|([{_WIDE}])|([^ {_WIDE}]+)")


def cells(text: str) -> int:
    """Terminal cells ``text`` takes."""
    return len(text) if text.isascii() else sum(get_cwidth(c) for c in text)


def indent_of(line: Line, width: int) -> int:
    """The hanging indent for ``line`` on ``width`` cells (see the module rules)."""
    indent = 0
    for style, text, *_ in line:
        if BODY_CLASS in style:
            break
        indent += cells(text)
    else:
        indent = 0  # no body: nothing to hang
    if indent <= width // 2:
        return indent
    return FALLBACK_INDENT if width // 2 >= FALLBACK_INDENT else 0


def _fit(text: str, start: int, room: int) -> int:
    """The end index of the longest run of ``text[start:]`` within ``room`` cells."""
    if text.isascii():
        return min(len(text), start + max(0, room))
    end, used = start, 0
    while end < len(text):
        w = get_cwidth(text[end])
        if used + w > room:
            break
        used += w
        end += 1
    return end


class _Rows:
    """The rows being built, with the column the cursor is at."""

    def __init__(self, width: int, indent: int) -> None:
        self.width = width
        self.indent = indent
        self.rows: list[Line] = []
        self.row: Line = []
        self.col = 0
        self.start = 0  # the column this row's text starts at (0, or the indent)

    def put(self, style: str, text: str, width: int) -> None:
        if self.row and self.row[-1][0] == style:
            self.row[-1] = (style, self.row[-1][1] + text)
        else:
            self.row.append((style, text))
        self.col += width

    def newline(self) -> None:
        if self.row and self.row[-1][1].endswith(" ") and self.col > self.start:
            style, text = self.row[-1][:2]  # the space at the break goes too
            self.row[-1] = (style, text.rstrip(" "))
        self.rows.append(self.row)
        self.row = [("", " " * self.indent)] if self.indent else []
        self.col = self.start = self.indent

    def word(self, pieces: list[tuple[str, str, int]]) -> None:
        total = sum(w for _, _, w in pieces)
        if self.col + total > self.width and total <= self.width - self.indent:
            self.newline()  # fits on a row of its own: break before it
        if self.col + total <= self.width:
            for style, text, w in pieces:
                self.put(style, text, w)
            return
        for style, text, _ in pieces:  # wider than a row: split at characters
            pos = 0
            while pos < len(text):
                end = _fit(text, pos, self.width - self.col)
                if end == pos:
                    if self.col > self.start:
                        self.newline()
                        continue
                    end = pos + 1  # one character wider than the whole row
                chunk = text[pos:end]
                self.put(style, chunk, cells(chunk))
                pos = end

    def spaces(self, style: str, text: str) -> None:
        if self.col + len(text) <= self.width:
            self.put(style, text, len(text))
        else:
            self.col = self.width  # the break: the spaces go, the next word starts a row

    def done(self) -> list[Line]:
        self.rows.append(self.row)
        return self.rows


def wrap(line: Line, width: int) -> list[Line]:
    """``line`` as rows of at most ``width`` cells (see the module rules)."""
    width = max(1, width)
    rows = _Rows(width, indent_of(line, width))
    word: list[tuple[str, str, int]] = []
    for style, text, *_ in line:
        for gap, wide, run in _PIECES.findall(text):
            if gap:
                if word:
                    rows.word(word)
                    word = []
                rows.spaces(style, gap)
            elif wide:
                if word:
                    rows.word(word)
                    word = []
                rows.word([(style, wide, get_cwidth(wide))])
            else:
                word.append((style, run, cells(run)))
    if word:
        rows.word(word)
    return rows.done()
