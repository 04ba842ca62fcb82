"""Direct messages: sealed to the recipient's key, signed inside (PROTOCOL.md §7.6).  Pure.

Rules:
- A direct message (DM) is an ordinary chat message on the outside: a random ``ID``, the
  sender's ``Addr``, the ``Timestamp``, the ``Body`` ``[encrypted message]`` (never empty:
  the Go peer crashes on an empty one) and ``Sealed``, the base64 of a libsodium sealed box
  (X25519, XSalsa20-Poly1305, an ephemeral key) to the X25519 key converted from the
  recipient's Ed25519 key.  The outside names no recipient and carries no ``Nick``, ``Key``
  or ``Sig``: it floods like any message, and every peer tries to open it.
- Inside, padded with zero bytes to the smallest of ``BUCKETS`` it fits: the items
  ``whispernet-dm-v1``, the sender's 32-byte key, the 64-byte signature, the nick, the text.
  The signature is over ``dm_signed_bytes``: the domain string and the outer ``ID``, ``Addr``
  and ``Timestamp``, the nick, the text, the sender's key and the recipient's key.  So no one
  can re-wrap a DM under a new ID or time (a replay), nor pass a DM they received on to a
  third peer as if written to it (the recipient's key is signed).
- ``open_dm`` returns None, fast, for a message that is not a DM for us: no ``Sealed`` string
  of a length a bucket gives, not base64, or a box our key does not open (one X25519
  operation).  A box that opens is ours; what it holds is then checked, and a bad inside
  (unknown layout, padding that is not zeros, a signature that does not verify) is an
  INVALID ``Opened``, dropped.  Nothing but these is returned; nothing is raised.
- ``seal`` raises ``DMError`` (our misuse: a text too long for the largest bucket, or a
  recipient key that is not a usable Ed25519 point), with a message for the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nacl.bindings
import nacl.exceptions

from .encoding import (
    BadEncoding,
    b64_length,
    decode_b64,
    encode_b64,
    item,
    read_items,
    text_item,
    uint_item,
)
from .keys import Identity
from .signing import KEY_BYTES, SIG_BYTES, SigStatus, check

SEALED = "Sealed"
PLACEHOLDER = "[encrypted message]"
DOMAIN = b"whispernet-dm-v1"
#: Plaintext sizes, in bytes; a DM's inside is padded to the smallest one it fits.
BUCKETS = (256, 1024, 4096, 16384, 65536, 262144)
SEAL_OVERHEAD = nacl.bindings.crypto_box_SEALBYTES  # 48: ephemeral key and MAC
#: The lengths a ``Sealed`` string can have: one per bucket.
SEALED_LENGTHS = frozenset(b64_length(size + SEAL_OVERHEAD) for size in BUCKETS)
_ITEMS = 5  # domain, sender key, signature, nick, text


class DMError(ValueError):
    """A DM we were asked to send cannot be sealed; the message says why, for the user."""


@dataclass(frozen=True, slots=True)
class Opened:
    """A DM sealed to us: VALID with who wrote it and what, or INVALID with why not."""

    status: SigStatus
    sender: bytes | None = None
    nick: str = ""
    text: str = ""
    reason: str = ""

    @property
    def valid(self) -> bool:
        return self.status is SigStatus.VALID


def is_dm(fields: Mapping[str, Any]) -> bool:
    return SEALED in fields


def dm_signed_bytes(
    outer: Mapping[str, Any], nick: str, text: str, sender: bytes, recipient: bytes
) -> bytes:
    """What a DM's inner signature signs (BadEncoding if an outer field has the wrong type)."""
    return b"".join(
        (
            item(DOMAIN),
            text_item(outer.get("ID")),
            text_item(outer.get("Addr")),
            uint_item(outer.get("Timestamp")),
            text_item(nick),
            text_item(text),
            item(sender),
            item(recipient),
        )
    )


def bucket(size: int) -> int:
    """The smallest bucket holding ``size`` bytes; DMError past the largest."""
    for limit in BUCKETS:
        if size <= limit:
            return limit
    room = BUCKETS[-1] - len(_inside(b"\0" * KEY_BYTES, b"\0" * SIG_BYTES, "", ""))
    raise DMError(f"a direct message holds at most {room:,} bytes of UTF-8 (nick and text)")


def seal(
    identity: Identity,
    recipient: bytes,
    *,
    id: str,
    addr: str,
    timestamp: int,
    nick: str,
    text: str,
) -> dict[str, Any]:
    """The wire object of a DM from us to ``recipient`` (an Ed25519 public key)."""
    outer: dict[str, Any] = {"ID": id, "Addr": addr, "Body": PLACEHOLDER, "Timestamp": timestamp}
    try:
        box_key = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(recipient)
        signature = identity.sign(dm_signed_bytes(outer, nick, text, identity.public, recipient))
    except nacl.exceptions.CryptoError:
        raise DMError("that key is not a usable Ed25519 public key") from None
    except BadEncoding as exc:
        raise DMError(f"cannot seal that text: {exc}") from None
    inside = _inside(identity.public, signature, nick, text)
    padded = inside + bytes(bucket(len(inside)) - len(inside))
    outer[SEALED] = encode_b64(nacl.bindings.crypto_box_seal(padded, box_key))
    return outer


def open_dm(identity: Identity, fields: Mapping[str, Any]) -> Opened | None:
    """The DM in ``fields`` if it is sealed to ``identity``, else None.  Never raises."""
    sealed = fields.get(SEALED)
    if type(sealed) is not str or len(sealed) not in SEALED_LENGTHS:
        return None
    try:
        box = decode_b64(sealed, None, SEALED, canonical=False)  # a box is a box
        padded = identity.unsealer.decrypt(box)
    except (BadEncoding, nacl.exceptions.CryptoError):
        return None
    try:
        return _check(identity, fields, padded)
    except BadEncoding as exc:
        return Opened(SigStatus.INVALID, reason=str(exc))


def _inside(sender: bytes, signature: bytes, nick: str, text: str) -> bytes:
    return item(DOMAIN) + item(sender) + item(signature) + text_item(nick) + text_item(text)


def _check(identity: Identity, outer: Mapping[str, Any], padded: bytes) -> Opened:
    items, padding = read_items(padded, _ITEMS)
    domain, sender, signature, nick_bytes, text_bytes = items
    if domain != DOMAIN:
        raise BadEncoding("not a whispernet-dm-v1 direct message")
    if sender is None or len(sender) != KEY_BYTES or signature is None:
        raise BadEncoding("the sender's key is missing or not 32 bytes")
    if len(signature) != SIG_BYTES or nick_bytes is None or text_bytes is None:
        raise BadEncoding("the signature, nick or text is missing")
    if padding.count(0) != len(padding):
        raise BadEncoding("the padding is not zero bytes")
    try:
        nick, text = nick_bytes.decode("utf-8"), text_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise BadEncoding("the nick or text is not UTF-8") from None
    signed = dm_signed_bytes(outer, nick, text, sender, identity.public)
    if not check(sender, signature, signed):
        return Opened(SigStatus.INVALID, reason="the signature does not verify")
    return Opened(SigStatus.VALID, sender, nick, text)
