"""Channels: ``#room`` names, what a channel message carries, and which ones we show.  Pure.

Rules (PROTOCOL.md §7.7):
- A channel message carries ``Channel``: ``#`` and 1 to 32 characters of ``a-z 0-9 . _ -``,
  the first a letter or digit.  Names are ASCII and lower case on the wire, so that two
  peers (in any language) agree on which channel a message is in by comparing strings, and
  no two names look alike.  What a user types is made lower case and given its ``#``
  (``/join Room`` joins ``#room``); anything else is refused with a one-line ``ChannelError``.
- No ``Channel`` is the main room: what the Go peer and old peers send and see.  A channel
  message's ``Body`` starts with ``[#room] `` so that those peers, which show every
  message, show which channel it belongs to; a peer that knows ``Channel`` shows the text
  without that prefix.
- Peers relay every channel's messages, joined or not.  They show the main room and the
  channels the user joined; a ``Channel`` that is not a valid name (or not a string) is
  shown nowhere, and relayed all the same.
- At most ``MAX_JOINED`` channels are joined at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

CHANNEL = "Channel"
MAX_JOINED = 64
_NAME = re.compile(r"#[a-z0-9][a-z0-9._-]{0,31}")
RULE = "a channel is # and 1-32 of a-z 0-9 . _ - (a letter or digit first), e.g. #general"


class ChannelError(ValueError):
    """The user named no valid channel, or one they are not in; one line, for the user."""


class BadChannel(ValueError):
    """A received message's ``Channel`` is not a valid name: show it nowhere."""


def is_name(value: object) -> bool:
    return type(value) is str and _NAME.fullmatch(value) is not None


def typed_name(text: str) -> str:
    """The channel a user means by ``text`` (``Room`` and ``#Room`` are ``#room``)."""
    name = text.strip()
    if not name.startswith("#"):
        name = "#" + name
    name = name.lower() if name.isascii() else name
    if not is_name(name):
        raise ChannelError(RULE)
    return name


def channel_of(fields: Mapping[str, Any]) -> str | None:
    """The channel of a received message, None for the main room; BadChannel if invalid."""
    value = fields.get(CHANNEL)
    if value is None:
        return None
    if not is_name(value):
        raise BadChannel("Channel is not a valid channel name")
    return value


def channel_body(channel: str | None, text: str) -> str:
    """The ``Body`` to send ``text`` in ``channel``."""
    return f"[{channel}] {text}" if channel else text


def shown_text(channel: str | None, body: str) -> str:
    """The text of a received message in ``channel``, without its ``[#room] `` prefix."""
    prefix = f"[{channel}] "
    if channel and body.startswith(prefix) and len(body) > len(prefix):
        return body[len(prefix) :]
    return body


class Channels:
    """The channels a user has joined, and where their typed lines go."""

    def __init__(self) -> None:
        self.joined: list[str] = []
        #: Where typed lines go: a joined channel, or None for the main room.
        self.current: str | None = None

    def join(self, text: str) -> str:
        name = typed_name(text)
        if name not in self.joined:
            if len(self.joined) >= MAX_JOINED:
                raise ChannelError(f"you are in {MAX_JOINED} channels already: /part one first")
            self.joined.append(name)
        self.current = name
        return name

    def part(self, text: str = "") -> str:
        """Leave ``text`` (default: the current channel); lines then go to the main room."""
        if not text.strip():
            if self.current is None:
                raise ChannelError("you are in the main room: /part #room leaves a channel")
            name = self.current
        else:
            name = typed_name(text)
        if name not in self.joined:
            raise ChannelError(f"you are not in {name}")
        self.joined.remove(name)
        if self.current == name:
            self.current = None
        return name

    def shows(self, channel: str | None) -> bool:
        return channel is None or channel in self.joined
