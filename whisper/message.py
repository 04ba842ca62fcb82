"""Whispernet messages: the one immutable value the rest of whisper passes around.

Rules (PROTOCOL.md §2 is normative; this module implements it):

- A message is a JSON object.  The keys we understand are ``ID``, ``Addr``, ``Body``,
  ``Nick``, ``omitempty`` and ``Timestamp``; keys are case-sensitive.
- ``ID`` and ``Addr`` must be non-empty strings, ``Nick`` and ``omitempty`` strings and
  ``Timestamp`` a non-negative integer.  A known key with the wrong type makes the message
  *invalid*: it is dropped and counted against the connection that sent it.
- A payload without a non-empty string ``Body`` is not a chat message.  It is *ignored*:
  not displayed, not relayed, not counted (extensions may send such payloads).
- The nick is ``Nick`` when it is non-empty, else ``omitempty`` (the key the Go reference
  peer uses, see PROTOCOL.md §2.3).  We send both.
- ``Timestamp`` is kept as it was on the wire.  A value below ``SECONDS_CUTOFF`` is in seconds
  (the Go reference), anything else in milliseconds; ``0`` means "no timestamp".
- Every key of the received object, known or not, is kept in ``fields`` so that relaying
  forwards extensions intact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

KNOWN_KEYS = frozenset({"ID", "Addr", "Body", "Nick", "omitempty", "Timestamp"})

#: Timestamps below this are seconds since the epoch (year 5138 in seconds, 1973 in ms).
SECONDS_CUTOFF = 100_000_000_000


class InvalidMessage(Exception):
    """A known field has the wrong type or a required field is missing: drop and count."""


class NotChat(Exception):
    """The payload has no non-empty string Body: ignore it silently."""


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    addr: str
    body: str
    nick: str = ""
    #: The Timestamp exactly as on the wire (seconds or milliseconds), None if absent.
    timestamp: int | None = None
    #: The whole JSON object as received or as we will send it (read-only).
    fields: Mapping[str, Any] = field(default_factory=_empty, compare=False, repr=False)

    @classmethod
    def create(
        cls,
        *,
        id: str,
        addr: str,
        body: str,
        nick: str = "",
        timestamp: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Message:
        """Build a message we originate (or a test fixture), with its wire object."""
        if not body:
            raise ValueError("a whispernet message must have a non-empty Body")
        wire: dict[str, Any] = {"ID": id, "Addr": addr, "Body": body}
        if nick:
            wire["Nick"] = nick
            wire["omitempty"] = nick
        if timestamp is not None:
            wire["Timestamp"] = timestamp
        if extra:
            clash = KNOWN_KEYS.intersection(extra)
            if clash:
                raise ValueError(f"extra keys clash with known keys: {sorted(clash)}")
            wire.update(extra)
        return cls(id, addr, body, nick, timestamp, MappingProxyType(wire))

    @classmethod
    def from_wire(cls, obj: dict[str, Any]) -> Message:
        """Interpret one decoded JSON object; raises NotChat or InvalidMessage."""
        body = obj.get("Body")
        if not isinstance(body, str) or not body:
            raise NotChat("no Body" if body is None else "Body is empty or not a string")
        id_ = obj.get("ID")
        if not isinstance(id_, str) or not id_:
            raise InvalidMessage("ID must be a non-empty string")
        addr = obj.get("Addr")
        if not isinstance(addr, str) or not addr:
            raise InvalidMessage("Addr must be a non-empty string")
        nick = obj.get("Nick", "")
        go_nick = obj.get("omitempty", "")  # checked even when Nick wins (§2.1)
        if type(nick) is not str or type(go_nick) is not str:  # decoded JSON: no subclasses
            raise InvalidMessage(
                f"{'Nick' if type(nick) is not str else 'omitempty'} must be a string"
            )
        nick = nick or go_nick
        ts = obj.get("Timestamp")
        if ts is not None and (type(ts) is not int or ts < 0):
            raise InvalidMessage("Timestamp must be a non-negative integer")
        return _make(id_, addr, body, nick, ts, MappingProxyType(obj))

    @property
    def timestamp_ms(self) -> int | None:
        """Milliseconds since the epoch, or None when the message carries no timestamp."""
        ts = self.timestamp
        if not ts:
            return None
        return ts * 1000 if ts < SECONDS_CUTOFF else ts

    @property
    def sender(self) -> str:
        """The name to display: the nick, or Addr when there is none (as the Go peer does)."""
        return self.nick or self.addr

    @property
    def extra(self) -> dict[str, Any]:
        """The keys this module does not interpret (extensions), in wire order."""
        return {k: v for k, v in self.fields.items() if k not in KNOWN_KEYS}


_new = object.__new__
_SET_ID, _SET_ADDR, _SET_BODY, _SET_NICK, _SET_TS, _SET_FIELDS = (
    getattr(Message, name).__set__ for name in ("id", "addr", "body", "nick", "timestamp", "fields")
)


def _make(
    id_: str, addr: str, body: str, nick: str, ts: int | None, fields: Mapping[str, Any]
) -> Message:
    """``Message(...)`` for ``from_wire``, once per message received: the frozen dataclass's
    ``__init__`` makes six ``object.__setattr__`` calls; the slots' own setters are 3x faster."""
    message = _new(Message)
    _SET_ID(message, id_)
    _SET_ADDR(message, addr)
    _SET_BODY(message, body)
    _SET_NICK(message, nick)
    _SET_TS(message, ts)
    _SET_FIELDS(message, fields)
    return message
