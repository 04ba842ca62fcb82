"""Slash commands of the extensions: identities (extension 13), the overlay (extension 14)
and the history store.

Rules:
- As every handler (``commands.py``): uses only the node's public interface, returns a
  ``Reply`` of data, never raises for user input.
- ``/whoami``, ``/verify``, ``/msg``, ``/join``, ``/part`` and ``/channels`` need the node's
  identity (``node.identity``; off: a one-line refusal); ``/search`` and ``/export`` need its
  history (``node.history``, ``store/stage.py``), searched and written off the event loop.
"""

from __future__ import annotations

from . import files, files_io
from .command_table import Reply, unquote, usage
from .identity import ChannelError, fingerprint, typed_digits
from .node import Node
from .store.errors import HistoryError
from .store.stage import result_line

_NO_IDENTITY = "identities are off in this peer: it has no key"


def whoami(node: Node, arg: str) -> Reply:
    """Extension 13: our fingerprint (PROTOCOL.md §7.5)."""
    if node.identity is None:
        return Reply([_NO_IDENTITY])
    key = node.identity.identity.public
    printed = fingerprint(key)
    return Reply([f"you are {node.nick or '(no nick)'}, fingerprint {printed}"], data=printed)


def verify(node: Node, arg: str) -> Reply:
    if node.identity is None:
        return Reply([_NO_IDENTITY])
    if not arg:
        return Reply([usage("verify")])
    pin = node.identity.pins.pin_for(arg)
    if pin is None:
        return Reply([f"no key pinned for {arg}: they have sent no signed message yet"])
    printed = fingerprint(pin.key)
    return Reply([f"{pin.nick}: fingerprint {printed} (compare it with theirs)"], data=printed)


def msg(node: Node, arg: str) -> Reply:
    words = arg.split(" ")
    # a fingerprint may be typed in its groups of five: the most leading words that are one
    spaced = [i for i in range(len(words) - 1, 1, -1) if typed_digits(" ".join(words[:i]))]
    count = spaced[0] if spaced else 1
    target, text = " ".join(words[:count]), " ".join(words[count:])
    if not target or not text.strip():
        return Reply([usage("msg")])
    try:
        message = node.direct(target, text)
    except ValueError as exc:
        return Reply([f"not sent: {exc}"])
    return Reply(data=message)


def join(node: Node, arg: str) -> Reply:
    if node.identity is None:
        return Reply([_NO_IDENTITY])
    if not arg:
        return Reply([usage("join")])
    try:
        name = node.identity.channels.join(arg)
    except ChannelError as exc:
        return Reply([str(exc)])
    return Reply([f"joined {name}: typed lines go there (/part leaves it)"], data=name)


def part(node: Node, arg: str) -> Reply:
    if node.identity is None:
        return Reply([_NO_IDENTITY])
    try:
        name = node.identity.channels.part(arg)
    except ChannelError as exc:
        return Reply([str(exc)])
    return Reply([f"left {name}; typed lines go to the main room"], data=name)


def channels(node: Node, arg: str) -> Reply:
    if node.identity is None:
        return Reply([_NO_IDENTITY])
    channels = node.identity.channels
    if not channels.joined:
        return Reply(["no channels joined: typed lines go to the main room"], data=[])
    rows = [f"  {c}{'  (current)' if c == channels.current else ''}" for c in channels.joined]
    return Reply([f"{len(channels.joined)} channel(s):", *rows], data=list(channels.joined))


def discover(node: Node, arg: str) -> Reply:
    """Extension 14: a shuffle now (PROTOCOL.md §7.8), graph_message's peer exchange."""
    if node.config.routing is None:
        return Reply(["no peer exchange with -routing flood: every peer is linked already"])
    if not node.discover():
        return Reply(["no overlay neighbour yet to exchange addresses with"], data=False)
    return Reply(["exchanging peer addresses with the overlay (a shuffle)"], data=True)


HISTORY_OFF = "history is off (-no-history, or it could not be used: see the warning)"


async def search(node: Node, arg: str) -> Reply:
    """Newest first: time, channel, nick and text of each (``store/stage.py``)."""
    if not arg:
        return Reply([usage("search")])
    if node.history is None or not node.history.on:
        return Reply([HISTORY_OFF])
    try:
        found = await node.history.search(arg)
    except HistoryError as exc:
        return Reply([f"search failed: {exc}"])
    if not found:
        return Reply([f"nothing in the history holds {arg!r}"], data=found)
    return Reply([f"{len(found)} found, newest first:", *map(result_line, found)], data=found)


async def export(node: Node, arg: str) -> Reply:
    if not arg:
        return Reply([usage("export")])
    if node.history is None:
        return Reply([HISTORY_OFF])
    try:
        path = files_io.user_path(unquote(arg))
        count = await node.history.export(path)
    except FileExistsError:
        return Reply([f"not exported: {arg} exists (give a new file)"])
    except (HistoryError, files.FileError, OSError) as exc:
        return Reply([f"not exported: {exc}"])
    return Reply([f"exported {count} messages to {path}"], data=path)
