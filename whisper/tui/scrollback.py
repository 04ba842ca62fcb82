"""The message area: the display lines kept, wrapped to the window, and where the view is.

Rules:
- It keeps the last ``limit`` lines and at most ``max_chars`` characters of them (a flood
  of long messages cannot grow it without bound); the oldest go first, in chunks.
- Lines are wrapped here (``wrap.py``: word boundaries, hanging indent), each once per
  width: a resize rewraps what is drawn again.
- The view either follows the end (``view is None``) or holds a top row: the line number
  (counted from the first line ever appended, so trimming never moves it) and the row
  within that line.  A held view stays put when lines arrive.
- PgUp and PgDn move the top row by a page (the window's height less 2 rows, so a little
  of the last page stays in sight), and every press moves it until the top or the end is
  reached: the first press at the end moves up at once, the first press at the top moves
  down.  Where the rest of the lines fit in the window, the view follows the end again.
- While the view is held, new messages are counted (``unread``), and those that mention
  us (``mentioned``); following the end again zeroes both.
- Older lines (from the history, when PgUp is pressed at the top) are put before the first
  (``prepend``), numbered down from it, so a held view stays on the line it showed.  They
  count against the same bounds, and only what fits is taken (the newest of them): a full
  scrollback loads no more.
"""

from __future__ import annotations

from prompt_toolkit.layout import UIContent, UIControl

from .wrap import Line, wrap

DEFAULT_SIZE = (80, 20)  # width and height until the first draw tells the real ones


def _chars(line: Line) -> int:
    return sum(len(fragment[1]) for fragment in line)


class Scrollback(UIControl):
    def __init__(self, limit: int, max_chars: int) -> None:
        self.limit = limit
        self.max_chars = max_chars
        self.lines: list[Line] = []
        self.first = 0  # the number of self.lines[0]
        self.view: tuple[int, int] | None = None  # (line number, row) at the top; None: end
        self.unread = 0
        self.mentioned = 0
        self._sizes: list[int] = []
        self._chars = 0
        self._rows: dict[int, list[Line]] = {}  # line number -> its rows at self.width
        self.width, self.height = DEFAULT_SIZE
        self.shown: list[Line] = []  # the rows drawn last

    # -- lines -----------------------------------------------------------------------------

    @property
    def end(self) -> int:
        """The number the next line appended gets."""
        return self.first + len(self.lines)

    def append(self, line: Line, *, message: bool = False, mention: bool = False) -> int:
        """Add a line; ``message``: count it as unread while the view is held.  Returns
        its number."""
        number = self.end
        self.lines.append(line)
        size = _chars(line)
        self._sizes.append(size)
        self._chars += size
        if self.view is not None and message:
            self.unread += 1
            self.mentioned += mention
        self._trim()
        return number

    def prepend(self, lines: list[Line]) -> int:
        """Put older ``lines`` (oldest first) before the first; returns how many fitted,
        the last ones of ``lines``."""
        room, chars, k = self.limit - len(self.lines), self.max_chars - self._chars, 0
        while k < min(room, len(lines)) and _chars(lines[-1 - k]) <= chars:
            chars -= _chars(lines[-1 - k])
            k += 1
        if k:
            taken = lines[len(lines) - k :]
            sizes = [_chars(line) for line in taken]
            self.lines[:0], self._sizes[:0] = taken, sizes
            self._chars += sum(sizes)
            self.first -= k
        return k

    def at_top(self) -> bool:
        """Is the first row of the first line in sight?"""
        if not self.lines:
            return True
        return self.view == (self.first, 0) or (
            self.view is None and self._fits_from((self.first, 0))
        )

    def _trim(self) -> None:
        # In chunks, so a flood costs one copy of the list per 10% of a bound, not per line.
        extra = len(self.lines) - self.limit
        drop = extra if extra >= max(1, self.limit // 10) else 0
        removed = sum(self._sizes[:drop])
        if self._chars - removed > self.max_chars:
            while drop < len(self.lines) - 1 and self._chars - removed > self.max_chars * 0.9:
                removed += self._sizes[drop]
                drop += 1
        if not drop:
            return
        self._chars -= removed
        del self.lines[:drop], self._sizes[:drop]
        for number in range(self.first, self.first + drop):
            self._rows.pop(number, None)
        self.first += drop
        if self.view is not None and self.view[0] < self.first:
            self.view = (self.first, 0)

    def clear(self) -> None:
        self.first = self.end
        self.lines.clear()
        self._sizes.clear()
        self._chars = 0
        self._rows.clear()
        self.follow()

    def rows_of(self, number: int) -> list[Line]:
        rows = self._rows.get(number)
        if rows is None:
            rows = self._rows[number] = wrap(self.lines[number - self.first], self.width)
        return rows

    # -- the view ----------------------------------------------------------------------------

    def follow(self) -> None:
        self.view = None
        self.unread = self.mentioned = 0

    def page(self) -> int:
        return max(1, self.height - 2)

    def scroll(self, rows: int) -> None:
        """Move the top row by ``rows`` (negative: up)."""
        if not self.lines:
            return
        top = self._moved(self.view or self._end_top(), rows)
        if self._fits_from(top):
            self.follow()  # at the end again, or everything fits
        else:
            self.view = top

    def hold_at(self, number: int) -> None:
        """Put line ``number``'s first row at the top (``/show``)."""
        if self.first <= number < self.end:
            self.view = (number, 0)
            if self._fits_from(self.view):
                self.follow()

    def _end_top(self) -> tuple[int, int]:
        """The top row of a view that shows the end."""
        last = self.end - 1
        return self._moved((last, len(self.rows_of(last)) - 1), -max(0, self.height - 1))

    def _moved(self, top: tuple[int, int], rows: int) -> tuple[int, int]:
        number, row = top
        number = max(number, self.first)
        row = min(row, len(self.rows_of(number)) - 1)
        while rows < 0:
            if row > 0:
                step = min(row, -rows)
                row, rows = row - step, rows + step
            elif number > self.first:
                number, rows = number - 1, rows + 1
                row = len(self.rows_of(number)) - 1
            else:
                break
        while rows > 0:
            last = len(self.rows_of(number)) - 1
            if row < last:
                step = min(last - row, rows)
                row, rows = row + step, rows - step
            elif number < self.end - 1:
                number, row, rows = number + 1, 0, rows - 1
            else:
                break
        return number, row

    def _fits_from(self, top: tuple[int, int]) -> bool:
        """Do the rows from ``top`` to the end fit in the window?"""
        number, row = top
        left = len(self.rows_of(number)) - row
        while left <= self.height and number < self.end - 1:
            number += 1
            left += len(self.rows_of(number))
        return left <= self.height

    def _visible(self) -> list[Line]:
        if self.view is not None:
            self.view = self._moved(self.view, 0)  # the line may have fewer rows now
            if self._fits_from(self.view):
                self.follow()  # a resize left nothing below
        if self.view is None:
            out: list[Line] = []
            number = self.end - 1
            while number >= self.first and len(out) < self.height:
                out[:0] = self.rows_of(number)
                number -= 1
            return out[-self.height :] if self.height else []
        number, row = self.view
        out = self.rows_of(number)[row:]
        while len(out) < self.height and number < self.end - 1:
            number += 1
            out += self.rows_of(number)
        return out[: self.height]

    # -- UIControl ---------------------------------------------------------------------------

    def is_focusable(self) -> bool:
        return False

    def create_content(self, width: int, height: int) -> UIContent:
        if width != self.width:
            self._rows.clear()
        self.width, self.height = width, height
        rows = self.shown = self._visible() if self.lines else []
        return UIContent(get_line=rows.__getitem__, line_count=len(rows), show_cursor=False)
