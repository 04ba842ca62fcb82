"""Signed messages: ``Key`` and ``Sig`` over a message's fields (PROTOCOL.md §7.5).  Pure.

Rules:
- A signed message carries ``Key`` (the sender's Ed25519 public key) and ``Sig`` (the
  signature), both canonical base64.  The signature is over ``signed_bytes``: the domain
  string ``whispernet-message-v1`` and then one item (``encoding.item``) per field of
  ``SIGNED_FIELDS``, in that order: never over JSON text, which relays re-encode.
- ``Nick`` is signed as the nick a receiver shows (``Nick`` when it is a non-empty string,
  else ``omitempty``, else empty; PROTOCOL.md §2.3), so no relay can change the nick shown
  under a signature by adding, removing or editing either key.  ``Timestamp`` is signed as
  an 8-byte integer; ``Key`` as its 32 bytes.  Keys not in ``SIGNED_FIELDS`` (``History``,
  unknown extensions) are not covered: a relay may add or drop them.
- ``verify`` never raises.  Its verdict is UNSIGNED when neither ``Key`` nor ``Sig`` is
  present (a Go peer's message, or one a Go peer relayed: it strips both), VALID when the
  signature checks, and INVALID for everything else: a signature that does not check, only
  one of the two keys, either of them malformed (wrong type, length or base64), or a signed
  field of the wrong type.  An INVALID message is dropped like a hashed-ID mismatch.
- Cost: one Ed25519 verification (about 45 us here, ``bench/bench_identity.py``) plus work
  linear in the message's size.  ``Key`` and ``Sig`` are length-checked before anything is
  decoded.  A message is verified once: after the seen check (a copy of a message already
  taken in is a duplicate and never verified again) and before it is marked seen, relayed,
  rate-limited or shown, so a forged copy can neither suppress nor spend the real one.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nacl.bindings
import nacl.exceptions

from .encoding import BadEncoding, decode_b64, encode_b64, item, text_item, uint_item
from .keys import Identity

KEY = "Key"
SIG = "Sig"
DOMAIN = b"whispernet-message-v1"
KEY_BYTES = 32
SIG_BYTES = 64
#: In this order; Nick is the nick shown (see ``shown_nick``), Key its 32 bytes.
SIGNED_FIELDS = (
    "ID",
    "Addr",
    "Body",
    "Nick",
    "Timestamp",
    "Channel",
    "FileName",
    "FileType",
    "FileContents",
    "Key",
)


class SigStatus(enum.Enum):
    UNSIGNED = "unsigned"
    VALID = "valid"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Verdict:
    status: SigStatus
    #: The signer's public key (VALID only).
    key: bytes | None = None
    #: Why it is INVALID, for the log.
    reason: str = ""

    @property
    def valid(self) -> bool:
        return self.status is SigStatus.VALID


UNSIGNED = Verdict(SigStatus.UNSIGNED)


def shown_nick(fields: Mapping[str, Any]) -> str:
    """The nick a receiver shows (PROTOCOL.md §2.3); BadEncoding if a nick key is no string."""
    nick, go_nick = fields.get("Nick", ""), fields.get("omitempty", "")
    if type(nick) is not str or type(go_nick) is not str:
        raise BadEncoding("Nick and omitempty must be strings")
    return nick or go_nick


def signed_bytes(fields: Mapping[str, Any], key: bytes) -> bytes:
    """What ``Sig`` signs, for a message with these fields signed by ``key``."""
    parts = [item(DOMAIN)]
    for name in SIGNED_FIELDS:
        if name == "Nick":
            parts.append(text_item(shown_nick(fields)))
        elif name == "Timestamp":
            parts.append(uint_item(fields.get("Timestamp")))
        elif name == "Key":
            parts.append(item(key))
        else:
            parts.append(text_item(fields.get(name)))
    return b"".join(parts)


def sign(identity: Identity, fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` with ``Key`` and ``Sig`` added last.  ValueError if a field cannot be signed
    (a lone surrogate: make text well formed first, as the codec will, PROTOCOL.md §2.6)."""
    wire = {k: v for k, v in fields.items() if k not in (KEY, SIG)}
    signature = identity.sign(signed_bytes(wire, identity.public))
    wire[KEY] = identity.key_text
    wire[SIG] = encode_b64(signature)
    return wire


def verify(fields: Mapping[str, Any]) -> Verdict:
    """The verdict on a decoded message's signature.  Never raises."""
    parsed = parse(fields)
    if type(parsed) is Verdict:
        return parsed
    key, signature, data = parsed
    if not check(key, signature, data):
        return Verdict(SigStatus.INVALID, reason="the signature does not verify")
    return Verdict(SigStatus.VALID, key)


def parse(fields: Mapping[str, Any]) -> tuple[bytes, bytes, bytes] | Verdict:
    """``verify`` up to the Ed25519 check: the key, the signature and the bytes it must sign,
    or the verdict already (UNSIGNED, or INVALID for a malformed one).  Never raises."""
    key_text, sig_text = fields.get(KEY), fields.get(SIG)
    if key_text is None and sig_text is None:
        return UNSIGNED
    if key_text is None or sig_text is None:
        return Verdict(SigStatus.INVALID, reason=f"{KEY if key_text is None else SIG} is missing")
    try:
        key = decode_b64(key_text, KEY_BYTES, KEY)
        return key, decode_b64(sig_text, SIG_BYTES, SIG), signed_bytes(fields, key)
    except BadEncoding as exc:
        return Verdict(SigStatus.INVALID, reason=str(exc))


def check(key: bytes, signature: bytes, data: bytes) -> bool:
    """Ed25519: does ``signature`` by ``key`` sign ``data``?  (libsodium refuses small-order
    keys and non-canonical signatures.)"""
    try:
        nacl.bindings.crypto_sign_open(signature + data, key)
    except nacl.exceptions.CryptoError:
        return False
    return True
