"""Running the node from the command line: its lifetime, signals, the web beside it, logging.

Rules (``cli.py`` parses the flags and builds the ``Config``; this runs what it built):
- Headless, the node and its front end share one nursery; ``listening on IP:PORT`` and, with
  ``-http``, ``web: URL`` go to stderr once bound.  SIGINT and SIGTERM say goodbye (presence),
  shut the web down gracefully (feeds closed with 1001, at most ``WEB_STOP_WAIT``), then
  close every connection.
- Beside the terminal UI, ``web: URL`` is printed before the screen opens (and is there
  again on leaving), and shown in the screen at start as well (``web_notes``), since the
  screen hides what was printed before it.
- A bind error is explained in one line naming the flag to change (``explain``), found
  through the nurseries' exception groups (``find``).
- Before the node listens, the start-up heap is frozen (``heap.py``).
- Log lines go to stderr neutralised for the terminal and rate-limited per call
  (``loglimit.py``); headless, only warnings unless ``-v`` (link-level lines are not chat).
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import trio

from .addr import format_hostport
from .heap import freeze_startup
from .loglimit import RepeatLimit
from .node import Node
from .sanitize import for_terminal

if TYPE_CHECKING:
    from .web import WebServer

E = TypeVar("E", bound=BaseException)

#: After SIGINT/SIGTERM, how long the web server may take to close before the node goes.
WEB_STOP_WAIT = 2.0

log = logging.getLogger("whisper")


def find(exc: BaseException, kind: type[E]) -> E | None:
    """The first ``kind`` in ``exc`` or, through nurseries' exception groups, inside it."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = find(inner, kind)
            if found is not None:
                return found
    return None


def hold_standard_fds() -> None:
    """Open /dev/null on a closed stdin, stdout or stderr (``<&-``): else the first socket
    takes its number, and stdin is read from our listener or output written to a peer."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one


async def run_headless_node(node: Node, args: argparse.Namespace, web: WebServer | None) -> None:
    from .headless import run_headless

    freeze_startup()  # the collector walks the start-up heap no more (heap.py)
    async with trio.open_nursery() as nursery:
        addr = await nursery.start(node.run)
        print(f"listening on {addr}", file=sys.stderr, flush=True)
        if web is not None:
            await start_web(nursery, web)
        nursery.start_soon(stop_on_signal, nursery.cancel_scope, web, node)
        await run_headless(node, json_output=args.json, file_contents=args.json_file_contents)
        nursery.cancel_scope.cancel()


async def run_with_web(
    run_node: Callable[..., Awaitable[None]],
    web: WebServer,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """``node.run`` and the web server in one nursery (for the terminal UI)."""
    freeze_startup()  # the collector walks the start-up heap no more (heap.py)
    async with trio.open_nursery() as nursery:
        addr = await nursery.start(run_node)
        await start_web(nursery, web)
        task_status.started(addr)


async def start_web(nursery: trio.Nursery, web: WebServer) -> None:
    try:
        url = await nursery.start(web.run)
    except OSError as exc:
        raise WebBindError(exc) from None
    if web.warning:
        print(f"whisper: warning: {web.warning}", file=sys.stderr, flush=True)
    print(f"web: {url}", file=sys.stderr, flush=True)


def web_notes(web: WebServer) -> list[str]:
    """What the terminal UI shows at start beside ``-http``: the page's address, token
    included (printed before the screen opened, which hides it), and any warning."""
    lines = [f"web: open {web.url}"]
    return [*lines, f"warning: {web.warning}"] if web.warning else lines


class WebBindError(Exception):
    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


async def stop_on_signal(
    scope: trio.CancelScope, web: WebServer | None = None, node: Node | None = None
) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("%s: closing connections", signal.Signals(signum).name)
            if node is not None:
                await node.farewell()  # presence: a clean exit says goodbye
            if web is not None:
                web.stop()  # feeds closed with 1001, requests finished: GRACEFUL_TIMEOUT
                with trio.move_on_after(WEB_STOP_WAIT):
                    await web.stopped.wait()
            scope.cancel()
            return


def explain(exc: OSError, host: str, port: int, flag: str = "") -> str:
    where = format_hostport(host, port)
    if exc.errno == errno.EADDRINUSE:
        pick = f"{flag} HOST:0" if flag else "-port 0"
        return (
            f"cannot listen on {where}: the port is in use "
            f"(pick another with {flag or '-port'}, or {pick})"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: no such address here (check {flag or '-host'})"
    if isinstance(exc, socket.gaierror):
        return f"cannot listen on {where}: {exc.strerror or exc} (check {flag or '-host'})"
    if exc.errno == errno.EACCES:
        return f"cannot listen on {where}: permission denied (use a port above 1023)"
    return f"cannot listen on {where}: {exc.strerror or exc}"


class _Formatter(logging.Formatter):
    """Log lines quote what peers wrote (an ``Addr`` in a flood-control cut ...), and stderr
    is often a terminal: neutralised as messages are (a traceback keeps its lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return for_terminal(super().formatMessage(record))


def setup_logging(verbose: int, headless: bool) -> None:
    """Headless, stderr is the user's terminal: link-level lines (connected, retrying, a
    clean close ...) are not chat, so only warnings show unless ``-v``; the terminal UI
    keeps INFO (it shows its log pane only with ``-v``)."""
    if verbose >= 2:
        level = logging.DEBUG
    elif verbose or not headless:
        level = logging.INFO
    else:
        level = logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    handler.addFilter(RepeatLimit())
    root = logging.getLogger("whisper")
    root.addHandler(handler)
    root.setLevel(level)
