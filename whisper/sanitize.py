"""Neutralise text from peers before it reaches a terminal.

Any field a peer controls (Body, Nick, Addr) may carry control characters or escape sequences
that would move the cursor, retitle the window, hide text or ring the bell.  Rules:

- C0 controls and DEL become their visible Unicode "control picture" (ESC -> U+241B);
  a tab becomes a space.
- C1 controls (U+0080-U+009F, which include the 8-bit CSI) become U+FFFD.
- Bidirectional embedding, override and isolate controls become U+FFFD: they could reorder
  what is displayed.  Right-to-left text itself is left as written.
- Line and paragraph separators (U+2028, U+2029) become U+2424 (newline picture).
- Everything else, including CJK, emoji and zero-width joiners, is kept.

``for_json`` applies the same policy to JSON text, escaping instead of replacing.
"""

from __future__ import annotations

_BIDI = [0x061C, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]

_TERMINAL: dict[int, str] = {c: chr(0x2400 + c) for c in range(0x20)}
_TERMINAL[0x09] = " "
_TERMINAL[0x7F] = "\u2421"
_TERMINAL.update({c: "\ufffd" for c in range(0x80, 0xA0)})
_TERMINAL.update({c: "\ufffd" for c in _BIDI})
_TERMINAL.update({0x2028: "\u2424", 0x2029: "\u2424"})

_JSON: dict[int, str] = {
    c: f"\\u{c:04x}" for c in [0x7F, *range(0x80, 0xA0), *_BIDI, 0x2028, 0x2029]
}


def for_terminal(text: str) -> str:
    """Text safe to write to a terminal, on one line."""
    # Every character _TERMINAL maps is non-printable, so printable text needs no work.
    return text if text.isprintable() else text.translate(_TERMINAL)


def for_json(json_text: str) -> str:
    """JSON text (already escaped for C0 by the encoder) with the other risky characters escaped."""
    return json_text.translate(_JSON)
