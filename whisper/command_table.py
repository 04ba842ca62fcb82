"""What slash commands exist and what they return: the table ``/help`` lists and ``Reply``.

Rules:
- ``COMMANDS`` is the one list of commands (name -> arguments, description), in the order
  ``/help`` shows them; the terminal UI completes from it and a test checks README's table
  against it.  ``commands.py`` maps each name to its handler.
- A ``Reply`` is data, never cleaned for a display (``commands.py`` says why).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    lines: list[str] = field(default_factory=list)
    quit: bool = False
    clear: bool = False
    data: Any = None
    show: int | None = None  # /show N: the number of a message the display cut short
    help: bool = False  # /help: a front end adds its own keys


#: name -> (arguments, description), in the order /help lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "help": ("", "list the commands"),
    "nick": ("NAME", "change your nick"),
    "connect": ("HOST:PORT", "open a link to a peer"),
    "disconnect": ("HOST:PORT", "close the link to a peer"),
    "peers": ("", "list connections, with direction and state"),
    "discover": ("", "exchange peer addresses with the overlay now (a shuffle)"),
    "who": ("", "list who is online: nick, address, last seen, linked (alias /names)"),
    "blacklist": ("", "list the peers flood control cut off, and for how long"),
    "unblock": ("ADDR", "lift a blacklist entry (an IP:PORT, or a host IP, as listed)"),
    "me": ("TEXT", "send an action, shown as '* nick TEXT'"),
    "send": ("PATH", "send a file (up to about 766 KiB: a message is at most 1 MiB)"),
    "files": ("", "list the files received (kept in memory, not written anywhere)"),
    "save": ("N [PATH]", "write received file N to PATH (a new file or a directory)"),
    "whoami": ("", "show your fingerprint, to compare out of band"),
    "verify": ("NICK", "show the fingerprint of the key NICK is pinned to"),
    "msg": ("NICK|FINGERPRINT TEXT", "send an end-to-end encrypted direct message"),
    "join": ("#ROOM", "join a channel: typed lines go there"),
    "part": ("[#ROOM]", "leave a channel (default: the current one)"),
    "channels": ("", "list the channels joined"),
    "search": ("TEXT", "search the history for messages holding every word of TEXT"),
    "export": ("PATH", "write the history to a new file: text for .txt, else JSON lines"),
    "show": ("N", "show message N whole, where the terminal UI cut it short"),
    "clear": ("", "clear the message area"),
    "quit": ("", "leave (Ctrl-D works too)"),
}


def usage(name: str) -> str:
    args, _ = COMMANDS[name]
    return f"usage: /{name} {args}".rstrip()


def unquote(text: str) -> str:
    """A path as typed, without one pair of surrounding quotes (as terminals paste them)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text
