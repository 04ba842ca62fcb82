"""Fingerprints: a public key as digits people can read aloud and compare (PROTOCOL.md §7.5).

Rules:
- The fingerprint of a key is 30 decimal digits in 6 groups of 5, as one half of a Signal
  safety number: SHA-512 over ``whispernet-fingerprint-v1`` and the 32 key bytes; each
  group is 5 bytes of the digest, read as a big-endian integer, modulo 100,000.  It is what
  ``/whoami`` and ``/verify NICK`` show, to compare out of band.  About 100 bits: no one can
  make a key with the fingerprint of another.
- The short form is its first two groups (10 digits, about 33 bits), shown beside an
  impostor's messages to tell keys apart at a glance.  It is not a check: a day of one
  core's work finds a key with a given short form.
- A fingerprint typed by a user (``/msg 12345 67890 ...``) is read as its digits alone;
  spaces, dashes and dots between them are ignored.  A prefix of at least ``MIN_TYPED``
  digits names a key if exactly one known key has it.
- One SHA-512, no iterations (Signal iterates 5,200 times to slow down the search for a
  partial match; at 100 bits a full match is out of reach without it, and the short form
  is not for verifying).
"""

from __future__ import annotations

import hashlib

DOMAIN = b"whispernet-fingerprint-v1"
GROUPS = 6
SHORT_GROUPS = 2
DIGITS = 5
MIN_TYPED = 10
_SEPARATORS = str.maketrans("", "", " -.:")


def digits(key: bytes) -> str:
    """The 30 digits of ``key``'s fingerprint, without spaces."""
    digest = hashlib.sha512(DOMAIN + key).digest()
    groups = (int.from_bytes(digest[i * 5 : i * 5 + 5], "big") % 10**DIGITS for i in range(GROUPS))
    return "".join(f"{g:0{DIGITS}d}" for g in groups)


def _grouped(text: str) -> str:
    return " ".join(text[i : i + DIGITS] for i in range(0, len(text), DIGITS))


def fingerprint(key: bytes) -> str:
    """``12345 67890 ...``: the full form, for ``/whoami`` and ``/verify``."""
    return _grouped(digits(key))


def short_fingerprint(key: bytes) -> str:
    """``12345 67890``: the first two groups, for telling keys apart on screen."""
    return _grouped(digits(key)[: SHORT_GROUPS * DIGITS])


def typed_digits(text: str) -> str | None:
    """The digits of a fingerprint as a user typed it, or None if it is not one."""
    compact = text.translate(_SEPARATORS)
    if not MIN_TYPED <= len(compact) <= GROUPS * DIGITS or not compact.isascii():
        return None
    return compact if compact.isdigit() else None
