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
  (extension 13, ``identity/``); with ``/join`` typed lines go to the channel joined.  They,
  and the history's ``/search`` and ``/export``, are in ``extension_commands.py``; the table
  of commands and ``Reply`` in ``command_table.py``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import trio

from . import extension_commands as ext
from . import files, files_io
from .addr import AddressError
from .command_table import COMMANDS, Reply, unquote, usage
from .node import Node
from .peers import Dialled

MAX_NICK = 32


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
    return Reply([f"no link to {arg}: /peers lists them"], data=False)


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
    path = unquote(arg)
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
        path = await trio.to_thread.run_sync(files_io.save, stored, unquote(target), downloads)
    except files.FileError as exc:
        return Reply([f"not saved: {exc}"])
    return Reply([f"saved #{stored.number} as {path}"], data=path)


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
    "discover": ext.discover,
    "who": _who,
    "names": _who,
    "blacklist": _blacklist,
    "unblock": _unblock,
    "me": _me,
    "send": _send,
    "files": _files,
    "save": _save,
    "whoami": ext.whoami,
    "verify": ext.verify,
    "msg": ext.msg,
    "join": ext.join,
    "part": ext.part,
    "channels": ext.channels,
    "search": ext.search,
    "export": ext.export,
    "show": _show,
    "clear": _clear,
    "quit": _quit,
}
