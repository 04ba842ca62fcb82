"""Lone surrogate escapes in the byte stream (PROTOCOL.md §1.3): made U+FFFD before parsing.

Rules:
- A ``\\uD800``-``\\uDFFF`` escape that is not half of a pair would decode to a lone
  surrogate, which cannot be encoded as UTF-8 again: ``SurrogateEscapes`` rewrites it as
  ``\\ufffd`` in the bytes, before the parser sees them, across chunk boundaries (an
  escape split between chunks is held back until it is complete).
- Bytes without a ``\\uD8``-``\\uDF`` hint pass through untouched (the common case costs
  one regular-expression search).
"""

from __future__ import annotations

import re

_HIGH = rb"[dD][89abAB][0-9a-fA-F]{2}"
_LOW = rb"[dD][c-fC-F][0-9a-fA-F]{2}"
#: Where a slice may hold a surrogate escape at all (the fast path skips the others).
_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]")
#: An escaped lone surrogate: group 1 is what comes before its ``uXXXX`` and is kept.  Each
#: branch starts at the first backslash of a run (none before it), whose length says which
#: backslashes begin escapes: an odd run ends with one.  Linear: a run is tried from its start.
_LONE_SURROGATE = re.compile(
    rb"(\\(?<!\\\\)(?:"
    rb"(?:\\\\)*(?=u" + _HIGH + rb"(?!\\u" + _LOW + rb"))"  # a high no low follows
    rb"|(?:\\\\)+(?=u" + _LOW + rb")"  # a low after escaped backslashes
    rb"|(?<!\\u" + _HIGH + rb"\\)(?=u" + _LOW + rb")"  # a low after no high
    rb"|\\(?:\\\\)*u" + _HIGH + rb"\\(?=u" + _LOW + rb")"  # a low after "\\uD800" as text
    rb"))u[0-9a-fA-F]{4}"
)
#: The end of a slice that may be the first half of what _LONE_SURROGATE must see whole.
_PARTIAL = re.compile(
    rb"\\(?:u(?:[dD](?:[89a-fA-F][0-9a-fA-F]?)?)?)?\Z"
    rb"|\\u" + _HIGH + rb"(?:\\(?:u(?:[dD](?:[c-fC-F][0-9a-fA-F]?)?)?)?)?\Z"
)


class SurrogateEscapes:
    """Rewrites escaped lone surrogates to ``\\ufffd`` in a byte stream (module rules)."""

    def __init__(self) -> None:
        self._held = b""

    def feed(self, data: bytes) -> bytes:
        """The bytes that may go to the parser now, rewritten; the rest is kept for later."""
        if self._held:
            data, self._held = self._held + data, b""
        hint = _SURROGATE_HINT.search(data)
        if b"\\" in data[-12:]:
            cut = self._partial(data)
            data, self._held = data[:cut], data[cut:]
        return _LONE_SURROGATE.sub(rb"\1ufffd", data) if hint else data

    def flush(self) -> bytes:
        """What was kept back, at the end of the stream."""
        held, self._held = self._held, b""
        return _LONE_SURROGATE.sub(rb"\1ufffd", held)

    @staticmethod
    def _partial(data: bytes) -> int:
        """Where a possibly unfinished surrogate escape (or pair) at the end starts."""
        found = _PARTIAL.search(data, max(0, len(data) - 12))
        while found:
            start = found.start()
            before = data[: start + 1]
            if (len(before) - len(before.rstrip(b"\\"))) % 2:  # an odd run: it begins an escape
                return start
            found = _PARTIAL.search(data, start + 1)
        return len(data)
