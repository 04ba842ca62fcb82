"""Message IDs: random IDs and the ``hash:<function>:<hex>`` scheme (PROTOCOL.md §3).

Rules:
- A hashed ID is ``hash:sha256:`` + lowercase hex of sha256 over the UTF-8 bytes of
  ``Addr + Body + T``, where T is the decimal Timestamp exactly as on the wire, or the empty
  string when the message has no Timestamp key.
- A received ``hash:sha256:`` ID that does not match its payload is a MISMATCH (the node drops
  the message and counts it against the connection).  Hex digits are compared
  case-insensitively.
- Any other ID, including ``hash:<unknown function>:...``, is OPAQUE: a plain random string.
"""

from __future__ import annotations

import enum
import hashlib
import secrets

from .message import Message

HASH_PREFIX = "hash:sha256:"


class IdCheck(enum.Enum):
    OPAQUE = "opaque"
    VALID = "valid"
    MISMATCH = "mismatch"


def random_id() -> str:
    """16 lowercase hex characters, like the Go reference peer's IDs."""
    return secrets.token_hex(8)


def hashed_id(addr: str, body: str, timestamp: int | None) -> str:
    stamp = "" if timestamp is None else str(timestamp)
    digest = hashlib.sha256((addr + body + stamp).encode("utf-8", "surrogatepass")).hexdigest()
    return HASH_PREFIX + digest


def check_id(message: Message) -> IdCheck:
    if not message.id.startswith(HASH_PREFIX):
        return IdCheck.OPAQUE
    expected = hashed_id(message.addr, message.body, message.timestamp)
    if message.id.lower() == expected:
        return IdCheck.VALID
    return IdCheck.MISMATCH
