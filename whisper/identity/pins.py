"""Nick-to-key pins: trust on first use, and who is an impostor (PROTOCOL.md §7.5).  Pure.

Rules:
- A nick is bound to the first key that signs a message under it (first come, first bound),
  and stays bound.  A message whose signature checks is then VERIFIED if its nick is bound
  to its key (the message that binds it included), an IMPOSTOR if the nick is bound to
  another key (the pin does not change), UNBOUND if its nick cannot be bound (none, or
  longer than ``MAX_NICK``).  A message without a valid signature is UNSIGNED and never
  binds, refreshes or contradicts a pin: a signed message relayed by a Go peer arrives
  unsigned, and its author is no impostor for that.
- Nicks are compared folded: NFKC, case-folded, with control, format and space characters
  removed, NFKC again; so ``Alice``, ``alice`` + U+200B and fullwidth ``alice`` are one
  nick.  Other look-alikes (``alice`` with a Cyrillic ``a``) are not folded: a fingerprint
  tells them apart.  Only nicks of at most ``MAX_NICK`` characters are folded (bounded work).
- Our own nicks are pinned to our key (``pin_own``) and never evicted: no one else's
  message shows as ours.
- The table is bounded (``max_pins``), as a segmented LRU: a new pin is on *probation*
  (a quarter of the table); one seen again at least ``PROMOTE_AFTER`` seconds after it was
  made is *protected*.  Each segment, when full, forgets its least recently seen pin.  So a
  burst of fresh nicks (keys cost nothing to make) only churns probation, and to push out
  a protected pin someone must keep as many nicks alive, for hours, as people talk here.
- Time is the caller's (``now``, in seconds): pins outlive the process (``records`` and
  ``restore``; the history store keeps them, ``store/pins.py``), so it should be the wall
  clock.
"""

from __future__ import annotations

import enum
import functools
import math
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .encoding import BadEncoding, decode_b64, encode_b64
from .fingerprints import digits

DEFAULT_MAX_PINS = 10_000
PROMOTE_AFTER = 3600.0
MAX_NICK = 64
FOLD_CACHE = 4096  # folded nicks remembered (each at most MAX_NICK characters)
_DROPPED = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


class Trust(enum.Enum):
    UNSIGNED = "unsigned"
    VERIFIED = "verified"
    IMPOSTOR = "impostor"
    UNBOUND = "unbound"


@dataclass(slots=True)
class Pin:
    nick: str  # as first seen
    key: bytes
    first_seen: float
    last_seen: float
    protected: bool = False
    own: bool = False

    @property
    def digits(self) -> str:
        return digits(self.key)


@dataclass(frozen=True, slots=True)
class Assessment:
    trust: Trust
    #: The key that signed the message (None when UNSIGNED).
    key: bytes | None = None
    #: The key the nick is bound to: for an IMPOSTOR, the genuine one.
    pinned: bytes | None = None
    #: This message bound the nick.
    new: bool = False

    @property
    def verified(self) -> bool:
        return self.trust is Trust.VERIFIED


def fold(nick: str) -> str | None:
    """The form nicks are compared in, or None for one that cannot be bound."""
    if not nick or len(nick) > MAX_NICK:
        return None
    return _fold(nick)


@functools.lru_cache(maxsize=FOLD_CACHE)  # once per message shown: the same few nicks
def _fold(nick: str) -> str | None:
    folded = unicodedata.normalize("NFKC", nick).casefold()
    folded = "".join(c for c in folded if unicodedata.category(c) not in _DROPPED)
    return unicodedata.normalize("NFKC", folded) or None  # what was dropped may uncompose


class PinTable:
    def __init__(self, max_pins: int = DEFAULT_MAX_PINS) -> None:
        if max_pins < 4:
            raise ValueError("max_pins must be at least 4")
        self.max_probation = max_pins // 4
        self.max_protected = max_pins - self.max_probation
        self._own: dict[str, Pin] = {}
        self._probation: OrderedDict[str, Pin] = OrderedDict()
        self._protected: OrderedDict[str, Pin] = OrderedDict()
        #: Bumped by every change to what ``records`` gives (a pin made, seen, moved, lost):
        #: a store saves the table when it differs from the count it saved at.
        self.changes = 0

    def __len__(self) -> int:
        return len(self._own) + len(self._probation) + len(self._protected)

    def pin_own(self, nick: str, key: bytes, now: float) -> Pin | None:
        """Bind our own nick to our key for good.  Returns the pin of someone else who holds
        it already (we are then the impostor on the screens of those who saw them first)."""
        folded = fold(nick)
        if folded is None:
            return None
        other = self._probation.pop(folded, None) or self._protected.pop(folded, None)
        self.changes += 1
        self._own[folded] = Pin(nick, key, now, now, protected=True, own=True)
        return other if other is not None and other.key != key else None

    def assess(self, nick: str, key: bytes | None, now: float) -> Assessment:
        """The trust in a message under ``nick`` whose valid signature is by ``key`` (None
        for a message without one); binds the nick on first use."""
        if key is None:
            return Assessment(Trust.UNSIGNED)
        folded = fold(nick)
        if folded is None:
            return Assessment(Trust.UNBOUND, key)
        pin = self._find(folded)
        if pin is None:
            self._add(folded, Pin(nick, key, now, now))
            return Assessment(Trust.VERIFIED, key, key, new=True)
        if pin.key != key:
            return Assessment(Trust.IMPOSTOR, key, pin.key)
        self._seen(folded, pin, now)
        return Assessment(Trust.VERIFIED, key, key)

    def key_for(self, nick: str) -> bytes | None:
        """The key ``nick`` is bound to (for ``/msg NICK``, ``/verify NICK``)."""
        folded = fold(nick)
        pin = self._find(folded) if folded is not None else None
        return pin.key if pin is not None else None

    def pin_for(self, nick: str) -> Pin | None:
        folded = fold(nick)
        return self._find(folded) if folded is not None else None

    def by_fingerprint(self, typed: str) -> list[Pin]:
        """The pins whose fingerprint starts with the digits ``typed`` (``/msg 12345 ...``),
        one per key."""
        found: dict[bytes, Pin] = {}
        for pin in self._all():
            if pin.key not in found and pin.digits.startswith(typed):
                found[pin.key] = pin
        return list(found.values())

    def records(self) -> list[dict[str, Any]]:
        """The pins as plain values (own pins excluded: they are pinned again each run)."""
        return [
            {
                "nick": p.nick,
                "key": encode_b64(p.key),
                "first_seen": p.first_seen,
                "last_seen": p.last_seen,
                "protected": p.protected,
            }
            for p in (*self._protected.values(), *self._probation.values())
        ]

    def restore(self, records: Iterable[Any]) -> int:
        """Add saved pins (skipping any that are malformed or already held); how many."""
        added = 0
        for record in records:
            pin = _pin_from(record)
            folded = fold(pin.nick) if pin is not None else None
            if pin is None or folded is None or self._find(folded) is not None:
                continue
            self._add(folded, pin)
            added += 1
        return added

    # -- the segments ------------------------------------------------------------------

    def _all(self) -> Iterable[Pin]:
        yield from self._own.values()
        yield from self._protected.values()
        yield from self._probation.values()

    def _find(self, folded: str) -> Pin | None:
        return self._own.get(folded) or self._protected.get(folded) or self._probation.get(folded)

    def _add(self, folded: str, pin: Pin) -> None:
        segment, cap = (
            (self._protected, self.max_protected)
            if pin.protected
            else (self._probation, self.max_probation)
        )
        segment[folded] = pin
        self.changes += 1
        if len(segment) > cap:
            segment.popitem(last=False)

    def _seen(self, folded: str, pin: Pin, now: float) -> None:
        pin.last_seen = max(pin.last_seen, now)
        self.changes += 1
        if pin.own:
            return
        if pin.protected:
            self._protected.move_to_end(folded)
        elif now - pin.first_seen >= PROMOTE_AFTER:
            del self._probation[folded]
            pin.protected = True
            self._add(folded, pin)
        else:
            self._probation.move_to_end(folded)


def _pin_from(record: Any) -> Pin | None:
    if not isinstance(record, dict):
        return None
    nick, key, first, last = (record.get(k) for k in ("nick", "key", "first_seen", "last_seen"))
    if type(nick) is not str or not all(_finite(t) for t in (first, last)):
        return None
    try:
        raw = decode_b64(key, 32, "key")
    except BadEncoding:
        return None
    return Pin(nick, raw, float(first), float(last), protected=record.get("protected") is True)


def _finite(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)
