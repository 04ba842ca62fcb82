"""What a node tells its front ends (terminal UI, headless, web): display events.

Front ends receive these from ``Node.subscribe()`` and never reach into the node otherwise;
they act on it only through ``Node``'s public methods and ``commands.execute``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .files import RejectedFile, StoredFile
from .message import Message


@dataclass(frozen=True, slots=True)
class Delivered:
    """A chat message to display: a new one from the network, or one of ours (``own``).

    ``history``: a replayed or old message, shown as history (``backlog.is_history``);
    ``file``: what the message carried as a file (extension 10), kept or rejected."""

    message: Message
    own: bool = False
    history: bool = False
    file: StoredFile | RejectedFile | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user may want to know: connected, dropped a peer and why, ..."""

    text: str
    warning: bool = False


Event = Delivered | Notice
