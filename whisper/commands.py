"""Slash commands, shared by every front end (terminal UI, headless, web).

Rules:
- A line that does not start with ``/`` is a chat message; surrounding whitespace is kept,
  an empty or blank line sends nothing.  ``//text`` sends ``/text``.
- ``/me TEXT`` sends the Body ``/me TEXT``, which front ends show as an action (PROTOCOL.md
  §2.4); peers that do not know the convention show the text as typed.
- ``execute`` uses only the node's public interface and never raises for user input: a
  command that fails, or a typo, returns a one-line hint.
- A ``Reply`` is data: English ``lines`` that are *not* cleaned for any display (they may
  quote what a peer or the user wrote; each front end cleans them its own way), the typed
  result in ``data`` (a ``Dialled``, ``PeerInfo`` rows, blacklist entries, files ...) for
  front ends that render it themselves (the JSON API), and what only concerns a display
  (``clear``, ``quit``, ``/show N``, and the keys ``/help`` adds) for the front end to act on.
- ``/send``, ``/files`` and ``/save`` are file transfer (extension 10, ``files.py``): reading
  and writing the file (``files_io.py``) run in a worker thread, off the event loop.
- ``/blacklist`` and ``/unblock`` are flood control (extension 12, ``flood.py``).
- ``/whoami``, ``/verify``, ``/msg``, ``/join``, ``/part`` and ``/channels`` are identities
  (extension 13, ``identity/``); with ``/join`` typed lines go to the channel joined.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from . import files, files_io
from .addr import AddressError
from .identity import ChannelError, fingerprint, typed_digits
from .node import Node
from .peers import Dialled
from .store.errors import HistoryError
from .store.stage import result_line

MAX_NICK = 32


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


async def execute(node: Node, line: str) -> Reply:
    if not line.startswith("/") or line.startswith("//"):
        text = line[1:] if line.startswith("//") else line
        return _say(node, text) if text.strip() else Reply()
    name, _, arg = line[1:].partition(" ")
    handler = _HANDLERS.get(name.lower())
    if handler is None:
        return Reply([f"unknown command /{name}: type /help for the list"])
    reply = handler(node, arg.strip())
    return await reply if isinstance(reply, Awaitable) else reply


def usage(name: str) -> str:
    args, _ = COMMANDS[name]
    return f"usage: /{name} {args}".rstrip()


def _say(node: Node, text: str, extra: dict[str, str] | None = None) -> Reply:
    try:
        if node.identity is not None:  # in the channel joined (extension 13)
            text, extra = node.identity.compose(text, extra)
        message = node.say(text, extra)
    except ValueError as exc:
        return Reply([f"not sent: {exc}"])
    return Reply(data=message)


def _help(node: Node, arg: str) -> Reply:
    width = max(len(f"/{n} {a}") for n, (a, _) in COMMANDS.items())
    lines = [f"{f'/{n} {a}'.rstrip():<{width}}  {d}" for n, (a, d) in COMMANDS.items()]
    return Reply(
        ["commands:", *lines, "anything else is sent as a message; //text sends /text"], help=True
    )


def nick_problem(name: str) -> str | None:
    """Why ``name`` cannot be a nick (``/nick``, ``-nick``), or None if it can."""
    # isprintable(): no control, format (bidi ...), separator or unassigned characters, no
    # space but " ", which is refused too
    if not name or len(name) > MAX_NICK or not name.isprintable() or " " in name:
        return f"a nick is 1-{MAX_NICK} printable characters without spaces"
    return None


def _nick(node: Node, arg: str) -> Reply:
    if not arg:
        return Reply([f"your nick is {node.nick or '(none)'}; {usage('nick')}"])
    if problem := nick_problem(arg):
        return Reply([problem])
    node.set_nick(arg)
    return Reply([f"you are now {arg}"])


_NOT_DIALLED = {
    Dialled.ALREADY: "already linked to {addr}",
    Dialled.OURSELVES: "{addr} is our own address",
    Dialled.BLACKLISTED: "{addr} is blacklisted (flood control): /unblock it first",
    Dialled.FULL: "not connecting to {addr}: already {n} outgoing links, the most we keep "
    "(/disconnect one, /peers lists them)",
}


def _connect(node: Node, arg: str) -> Reply:
    if not arg:
        return Reply([usage("connect")])
    try:
        verdict = node.connect(arg)
    except AddressError as exc:
        return Reply([f"{exc}; {usage('connect')}"])
    text = _NOT_DIALLED.get(verdict, "connecting to {addr}")
    n = sum(p.outgoing for p in node.peers())
    return Reply([text.format(addr=arg, n=n)], data=verdict)


def _disconnect(node: Node, arg: str) -> Reply:
    if not arg:
        return Reply([usage("disconnect")])
    try:
        if node.disconnect(arg):
            return Reply(data=True)
    except AddressError as exc:
        return Reply([f"{exc}; {usage('disconnect')}"])
    return Reply([f"no outgoing link to {arg}: /peers lists them"], data=False)


def _peers(node: Node, arg: str) -> Reply:
    peers = node.peers()
    rows = [
        f"  {'out' if p.outgoing else 'in '} {p.addr}  {p.state} {p.seconds:.0f}s"
        + (f"  ({p.last_error})" if p.last_error else "")
        for p in peers
    ]
    out = sum(p.outgoing for p in peers)
    head = f"{out} outgoing, {len(peers) - out} incoming; we are {node.addr}"
    return Reply([head, *rows], data=peers)


def _me(node: Node, arg: str) -> Reply:
    return _say(node, f"/me {arg}") if arg else Reply([usage("me")])


async def _send(node: Node, arg: str) -> Reply:
    """Extension 10: a file message (PROTOCOL.md §7.2)."""
    path = _unquote(arg)
    if not path:
        return Reply([usage("send")])
    limit = node.config.limits.max_size
    try:
        outgoing = await trio.to_thread.run_sync(files_io.prepare, path, limit)
    except files.FileError as exc:
        return Reply([f"not sent: {exc}"])
    reply = _say(node, outgoing.body, outgoing.extra)
    if not reply.lines:
        reply.lines = [f"sent {outgoing.name} ({files.human_size(outgoing.size)})"]
    return reply


def _files(node: Node, arg: str) -> Reply:
    kept = node.files()
    if not kept:
        return Reply(["no files received; nothing is written unless you /save it"], data=kept)
    head = (
        f"{len(kept)} file(s), {files.human_size(sum(f.size for f in kept))}, in memory; "
        "/save N [PATH] writes one"
    )
    rows = [
        f"  #{f.number}  {f.describe()}  from {f.sender}"
        f"  {time.strftime('%H:%M', time.localtime(f.received))}"
        for f in kept
    ]
    return Reply([head, *rows], data=kept)


def _number(text: str) -> int | None:
    """``N`` or ``#N`` as typed, else None."""
    text = text.lstrip("#")
    # "²" isdigit() but int() refuses it, as it does over 4,300 digits
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    return int(text)


def _show(node: Node, arg: str) -> Reply:
    number = _number(arg)
    return Reply([usage("show")]) if number is None else Reply(show=number)


async def _save(node: Node, arg: str) -> Reply:
    text, _, target = arg.partition(" ")
    number = _number(text)
    if number is None:
        return Reply([usage("save")])
    stored = node.file(number)
    if isinstance(stored, str):
        return Reply([stored])
    downloads = node.config.files.downloads
    try:
        path = await trio.to_thread.run_sync(files_io.save, stored, _unquote(target), downloads)
    except files.FileError as exc:
        return Reply([f"not saved: {exc}"])
    return Reply([f"saved #{stored.number} as {path}"], data=path)


def _unquote(text: str) -> str:
    """A path as typed, without one pair of surrounding quotes (as terminals paste them)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _blacklist(node: Node, arg: str) -> Reply:
    """Extension 12: who flood control cut off (PROTOCOL.md §7.4)."""
    entries = node.blacklist()
    if entries is None:
        return Reply(["flood control is off (-no-flood-control): nobody is blacklisted"])
    if not entries:
        return Reply(["nobody is blacklisted"], data=entries)
    rows = [f"  {e.text}" for e in entries]
    return Reply([f"{len(entries)} blacklisted; /unblock ADDR lifts an entry", *rows], data=entries)


def _unblock(node: Node, arg: str) -> Reply:
    if not arg:
        return Reply([usage("unblock")])
    if node.blacklist() is None:
        return Reply(["flood control is off (-no-flood-control): nothing to unblock"])
    lifted = node.unblock(arg)
    if not lifted:
        return Reply([f"{arg} is not blacklisted: /blacklist lists the entries"], data=lifted)
    return Reply([f"unblocked {arg}"], data=lifted)


def _who(node: Node, arg: str) -> Reply:
    users = node.users()
    rows = [
        f"  {u.nick or '(no nick)'}  {u.addr}  "
        + ("you" if u.you else f"seen {u.seconds:.0f}s ago, " + _linked(u.linked))
        for u in users
    ]
    return Reply([f"{len(users)} online", *rows], data=users)


def _linked(linked: bool) -> str:
    return "linked" if linked else "not linked"


_NO_IDENTITY = "identities are off in this peer: it has no key"


def _whoami(node: Node, arg: str) -> Reply:
    """Extension 13: our fingerprint (PROTOCOL.md §7.5)."""
    if node.identity is None:
        return Reply([_NO_IDENTITY])
    key = node.identity.identity.public
    printed = fingerprint(key)
    return Reply([f"you are {node.nick or '(no nick)'}, fingerprint {printed}"], data=printed)


def _verify(node: Node, arg: str) -> Reply:
    if node.identity is None:
        return Reply([_NO_IDENTITY])
    if not arg:
        return Reply([usage("verify")])
    pin = node.identity.pins.pin_for(arg)
    if pin is None:
        return Reply([f"no key pinned for {arg}: they have sent no signed message yet"])
    printed = fingerprint(pin.key)
    return Reply([f"{pin.nick}: fingerprint {printed} (compare it with theirs)"], data=printed)


def _msg(node: Node, arg: str) -> Reply:
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


def _join(node: Node, arg: str) -> Reply:
    if node.identity is None:
        return Reply([_NO_IDENTITY])
    if not arg:
        return Reply([usage("join")])
    try:
        name = node.identity.channels.join(arg)
    except ChannelError as exc:
        return Reply([str(exc)])
    return Reply([f"joined {name}: typed lines go there (/part leaves it)"], data=name)


def _part(node: Node, arg: str) -> Reply:
    if node.identity is None:
        return Reply([_NO_IDENTITY])
    try:
        name = node.identity.channels.part(arg)
    except ChannelError as exc:
        return Reply([str(exc)])
    return Reply([f"left {name}; typed lines go to the main room"], data=name)


def _channels(node: Node, arg: str) -> Reply:
    if node.identity is None:
        return Reply([_NO_IDENTITY])
    channels = node.identity.channels
    if not channels.joined:
        return Reply(["no channels joined: typed lines go to the main room"], data=[])
    rows = [f"  {c}{'  (current)' if c == channels.current else ''}" for c in channels.joined]
    return Reply([f"{len(channels.joined)} channel(s):", *rows], data=list(channels.joined))


HISTORY_OFF = "history is off (-no-history, or it could not be used: see the warning)"


async def _search(node: Node, arg: str) -> Reply:
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


async def _export(node: Node, arg: str) -> Reply:
    if not arg:
        return Reply([usage("export")])
    if node.history is None:
        return Reply([HISTORY_OFF])
    try:
        path = files_io.user_path(_unquote(arg))
        count = await node.history.export(path)
    except FileExistsError:
        return Reply([f"not exported: {arg} exists (give a new file)"])
    except (HistoryError, files.FileError, OSError) as exc:
        return Reply([f"not exported: {exc}"])
    return Reply([f"exported {count} messages to {path}"], data=path)


def _clear(node: Node, arg: str) -> Reply:
    return Reply(clear=True)


def _quit(node: Node, arg: str) -> Reply:
    return Reply(quit=True)


_HANDLERS: dict[str, Callable[[Node, str], Reply | Awaitable[Reply]]] = {
    "help": _help,
    "nick": _nick,
    "connect": _connect,
    "disconnect": _disconnect,
    "peers": _peers,
    "who": _who,
    "names": _who,
    "blacklist": _blacklist,
    "unblock": _unblock,
    "me": _me,
    "send": _send,
    "files": _files,
    "save": _save,
    "whoami": _whoami,
    "verify": _verify,
    "msg": _msg,
    "join": _join,
    "part": _part,
    "channels": _channels,
    "search": _search,
    "export": _export,
    "show": _show,
    "clear": _clear,
    "quit": _quit,
}
