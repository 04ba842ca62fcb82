"""The byte encodings identities use: length-prefixed items, and strict base64 (PROTOCOL.md §7.5).

Rules:
- What is signed is never JSON text: it is a *domain string* followed by items, each field
  its own item, in a fixed order.  An item is ``0x00`` for a field that is absent, or
  ``0x01`` followed by the length of its bytes (4 bytes, big-endian) and the bytes.  So an
  absent field and an empty one differ, and no field can be read as part of its neighbour.
- Text is UTF-8.  An integer (``Timestamp``) is 8 bytes, big-endian, unsigned.
- Keys and signatures travel as standard base64 with padding (RFC 4648 §4), and only in
  their one canonical spelling: a string of the wrong length is refused before it is
  decoded (so a huge one costs nothing), and one whose unused bits are set is refused too
  (it would decode to the same bytes as another string).
- Every failure here is a ``BadEncoding``; nothing else is raised for any input.
"""

from __future__ import annotations

import base64
import binascii

ABSENT = b"\x00"
PRESENT = b"\x01"
MAX_UINT64 = (1 << 64) - 1


class BadEncoding(ValueError):
    """A value does not have the form its field requires (the remote's fault)."""


def item(data: bytes | None) -> bytes:
    """One field: ``0x00`` when absent, else ``0x01``, its length (u32, big-endian), its bytes."""
    if data is None:
        return ABSENT
    return PRESENT + len(data).to_bytes(4, "big") + data


def text_item(value: object) -> bytes:
    """A text field: absent (None), or a string as UTF-8 (a lone surrogate is refused)."""
    if value is None:
        return ABSENT
    if type(value) is not str:
        raise BadEncoding(f"a string was expected, not {type(value).__name__}")
    try:
        return item(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise BadEncoding("the text holds a lone surrogate") from None


def uint_item(value: object) -> bytes:
    """An integer field: absent (None), or 0 <= value < 2**64 as 8 bytes, big-endian."""
    if value is None:
        return ABSENT
    if type(value) is not int or not 0 <= value <= MAX_UINT64:
        raise BadEncoding("an integer from 0 to 2**64 - 1 was expected")
    return item(value.to_bytes(8, "big"))


def read_items(data: bytes, count: int) -> tuple[list[bytes | None], bytes]:
    """Parse ``count`` items from the start of ``data``; returns them and what follows."""
    items: list[bytes | None] = []
    at = 0
    for _ in range(count):
        tag = data[at : at + 1]
        if tag == ABSENT:
            items.append(None)
            at += 1
            continue
        if tag != PRESENT or len(data) < at + 5:
            raise BadEncoding("truncated or unknown item")
        size = int.from_bytes(data[at + 1 : at + 5], "big")
        end = at + 5 + size
        if end > len(data):
            raise BadEncoding("an item runs past the end")
        items.append(data[at + 5 : end])
        at = end
    return items, data[at:]


def b64_length(size: int) -> int:
    """Characters of the padded base64 of ``size`` bytes."""
    return 4 * ((size + 2) // 3)


def encode_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_b64(
    value: object, size: int | None = None, what: str = "value", *, canonical: bool = True
) -> bytes:
    """Strict, canonical base64 of ``size`` bytes (any size when None); else BadEncoding.
    ``canonical=False`` skips re-encoding to compare (a third of the time on a large value),
    for values whose other spellings decode to the same bytes and mean the same thing."""
    if type(value) is not str:
        raise BadEncoding(f"{what} must be a base64 string, not {type(value).__name__}")
    if size is not None and len(value) != b64_length(size):
        raise BadEncoding(f"{what} must be {b64_length(size)} base64 characters ({size} bytes)")
    try:
        data = base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise BadEncoding(f"{what} is not base64") from None
    if size is not None and len(data) != size:
        raise BadEncoding(f"{what} must be {b64_length(size)} base64 characters ({size} bytes)")
    if canonical and base64.b64encode(data).decode("ascii") != value:
        raise BadEncoding(f"{what} is not in canonical base64")
    return data
