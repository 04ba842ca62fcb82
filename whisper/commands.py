"""Slash commands, shared by every front end (terminal UI, headless, web).

Rules:
- A line that does not start with ``/`` is a chat message; surrounding whitespace is kept,
  an empty or blank line sends nothing.  ``//text`` sends ``/text``.
- ``/me TEXT`` sends the Body ``/me TEXT``, which front ends show as an action (PROTOCOL.md
  §2.4); peers that do not know the convention show the text as typed.
- A command that fails, or a typo, returns a one-line hint; ``execute`` never raises for user
  input.
- Commands that only concern a display (``/clear``, ``/show N``, and the keys ``/help``
  adds) are reported in the ``Reply`` for the front end to act on.
- ``/send``, ``/files`` and ``/save`` are file transfer (extension 10, ``files.py``): a file
  is read, or written, here and at once; either is at most one message's size.
- ``/blacklist`` and ``/unblock`` are flood control (extension 12, ``flood.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import trio

from . import files
from .addr import AddressError, format_hostport, parse_hostport
from .node import Node
from .sanitize import for_terminal

MAX_NICK = 32


@dataclass
class Reply:
    lines: list[str] = field(default_factory=list)
    quit: bool = False
    clear: bool = False
    show: int | None = None  # /show N: the number of a message the display cut short
    help: bool = False  # /help: a front end adds its own keys


#: name -> (arguments, description), in the order /help lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "help": ("", "list the commands"),
    "nick": ("NAME", "change your nick"),
    "connect": ("HOST:PORT", "open a link to a peer"),
    "disconnect": ("HOST:PORT", "close the link to a peer"),
    "peers": ("", "list connections, with direction and state"),
    "blacklist": ("", "list the peers flood control cut off, and for how long"),
    "unblock": ("ADDR", "lift a blacklist entry (an IP:PORT, or a host IP, as listed)"),
    "me": ("TEXT", "send an action, shown as '* nick TEXT'"),
    "send": ("PATH", "send a file (up to about 766 KiB: a message is at most 1 MiB)"),
    "files": ("", "list the files received (kept in memory, not written anywhere)"),
    "save": ("N [PATH]", "write received file N to PATH (a new file or a directory)"),
    "show": ("N", "show message N whole, where the terminal UI cut it short"),
    "clear": ("", "clear the message area"),
    "quit": ("", "leave (Ctrl-D works too)"),
}


def execute(node: Node, line: str) -> Reply:
    if not line.startswith("/") or line.startswith("//"):
        text = line[1:] if line.startswith("//") else line
        if text.strip():
            try:
                node.say(text)
            except ValueError as exc:
                return Reply([f"not sent: {exc}"])
        return Reply()
    name, _, arg = line[1:].partition(" ")
    arg = arg.strip()
    handler = _HANDLERS.get(name.lower())
    if handler is None:
        return Reply([f"unknown command /{for_terminal(name)}: type /help for the list"])
    return handler(node, arg)


def usage(name: str) -> str:
    args, _ = COMMANDS[name]
    return f"usage: /{name} {args}".rstrip()


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


def _connect(node: Node, arg: str) -> Reply:
    if not arg:
        return Reply([usage("connect")])
    try:
        if node.flood is not None and node.flood.blocked(_hostport(arg), trio.current_time()):
            return Reply([f"{for_terminal(arg)} is blacklisted (flood control): /unblock it first"])
        full = len(node.table.outgoing) >= node.table.max_outgoing
        started = node.connect(arg)
    except AddressError as exc:
        return Reply([f"{exc}; {usage('connect')}"])
    if not started and full and _hostport(arg) not in node.table.outgoing:
        return Reply(
            [
                f"not connecting to {arg}: already {len(node.table.outgoing)} outgoing links, "
                "the most we keep (/disconnect one, /peers lists them)"
            ]
        )
    return Reply([f"connecting to {arg}" if started else f"already linked to {arg} (or it is us)"])


def _disconnect(node: Node, arg: str) -> Reply:
    if not arg:
        return Reply([usage("disconnect")])
    try:
        if node.disconnect(arg):
            return Reply()
    except AddressError as exc:
        return Reply([f"{exc}; {usage('disconnect')}"])
    return Reply([f"no outgoing link to {arg}: /peers lists them"])


def _peers(node: Node, arg: str) -> Reply:
    now = trio.current_time()
    table = node.table
    rows = [
        f"  out {p.addr}  {p.state.value} {now - p.since:.0f}s"
        + (f"  ({for_terminal(p.last_error)})" if p.last_error else "")
        for p in table.outgoing.values()
    ]
    rows += [f"  in  {p.addr}  connected {now - p.since:.0f}s" for p in table.incoming.values()]
    head = f"{len(table.outgoing)} outgoing, {len(table.incoming)} incoming; we are {node.addr}"
    return Reply([head, *rows])


def _me(node: Node, arg: str) -> Reply:
    if not arg:
        return Reply([usage("me")])
    try:
        node.say(f"/me {arg}")
    except ValueError as exc:
        return Reply([f"not sent: {exc}"])
    return Reply()


def _send(node: Node, arg: str) -> Reply:
    """Extension 10: a file message (PROTOCOL.md §7.2)."""
    path = _unquote(arg)
    if not path:
        return Reply([usage("send")])
    try:
        outgoing = files.prepare(path, node.config.max_message_size)
        node.say(outgoing.body, outgoing.extra)
    except (files.FileError, ValueError) as exc:
        return Reply([f"not sent: {for_terminal(str(exc))}"])
    return Reply([f"sent {for_terminal(outgoing.name)} ({files.human_size(outgoing.size)})"])


def _files(node: Node, arg: str) -> Reply:
    kept = node.files.files()
    if not kept:
        return Reply(["no files received; nothing is written unless you /save it"])
    head = (
        f"{len(kept)} file(s), {files.human_size(node.files.nbytes)}, in memory; "
        "/save N [PATH] writes one"
    )
    rows = [
        f"  #{f.number}  {for_terminal(f.describe())}  from {for_terminal(f.sender)}"
        f"  {time.strftime('%H:%M', time.localtime(f.received))}"
        for f in kept
    ]
    return Reply([head, *rows])


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


def _save(node: Node, arg: str) -> Reply:
    text, _, target = arg.partition(" ")
    number = _number(text)
    if number is None:
        return Reply([usage("save")])
    stored = node.files.get(number)
    if stored is None:
        return Reply([node.files.missing(number)])
    try:
        path = files.save(stored, _unquote(target), node.config.downloads)
    except files.FileError as exc:
        return Reply([f"not saved: {for_terminal(str(exc))}"])
    return Reply([f"saved #{stored.number} as {for_terminal(str(path))}"])


def _unquote(text: str) -> str:
    """A path as typed, without one pair of surrounding quotes (as terminals paste them)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _blacklist(node: Node, arg: str) -> Reply:
    """Extension 12: who flood control cut off (PROTOCOL.md §7.4)."""
    if node.flood is None:
        return Reply(["flood control is off (-no-flood-control): nobody is blacklisted"])
    now = trio.current_time()
    entries = node.flood.blacklist.entries(now)
    if not entries:
        return Reply(["nobody is blacklisted"])
    rows = [f"  {for_terminal(e.describe(now))}" for e in entries]
    return Reply([f"{len(entries)} blacklisted; /unblock ADDR lifts an entry", *rows])


def _unblock(node: Node, arg: str) -> Reply:
    if not arg:
        return Reply([usage("unblock")])
    if node.flood is None:
        return Reply(["flood control is off (-no-flood-control): nothing to unblock"])
    if not node.flood.unblock(arg):
        return Reply([f"{for_terminal(arg)} is not blacklisted: /blacklist lists the entries"])
    return Reply([f"unblocked {for_terminal(arg)}"])


def _hostport(text: str) -> str:
    return format_hostport(*parse_hostport(text))


def _clear(node: Node, arg: str) -> Reply:
    return Reply(clear=True)


def _quit(node: Node, arg: str) -> Reply:
    return Reply(quit=True)


_HANDLERS = {
    "help": _help,
    "nick": _nick,
    "connect": _connect,
    "disconnect": _disconnect,
    "peers": _peers,
    "blacklist": _blacklist,
    "unblock": _unblock,
    "me": _me,
    "send": _send,
    "files": _files,
    "save": _save,
    "show": _show,
    "clear": _clear,
    "quit": _quit,
}
