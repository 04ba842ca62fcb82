"""Command line: ``whisper [-nick NAME] [-peer HOST:PORT ...] [-port N] [-host IP] ...``.

Rules:
- Flags are the Go reference peer's (``-nick``, ``-peer``, ``-port``) plus what scripting
  needs; ``--nick`` style is accepted too.
- Bad flags, an unparsable ``-peer`` (``a b:1`` too: no host is called that), a ``-nick``
  that ``/nick`` would refuse, or a port in use print one line to stderr and exit 2 (usage)
  or 1 (could not start), never a traceback.  An unreachable peer is only a warning.
- A peer bound to loopback (``-host 127.0.0.1``) takes no part in UDP discovery unless
  ``-discovery-port`` is given.
- ``listening on IP:PORT`` goes to stderr once the port is bound; so do log lines, which may
  quote peers, neutralised for the terminal (``sanitize.for_terminal``), and rate-limited per
  log call with a count of what was left out (``loglimit.py``): a flood of bad input must not
  fill the disk with stderr.
- Identities (extension 13) are on: the key file (``-identity PATH``, else the data
  directory's) is loaded or made before the node starts; one it cannot use is one line on
  stderr (``chmod 600 PATH`` ...) and exit 1.
- SIGINT and SIGTERM close every connection and exit 0.
- With a terminal on stdin and stdout the terminal UI runs (``whisper.tui``); ``-headless``,
  ``-json`` or a pipe select the headless front end.
- ``-http HOST:PORT`` also serves the web interface and API (``whisper.web``) from the node's
  nursery, beside either front end; ``web: http://...?token=...`` goes to stderr once it
  listens (with the terminal UI: before the screen opens, so it is there again on leaving).
  SIGINT and SIGTERM shut it down gracefully (feeds closed with 1001) before the node.
- This module parses the flags into a ``Config``; ``launch.py`` runs what it built (the
  nursery, signals, the web beside the node, logging, one-line bind errors).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from collections.abc import Sequence
from functools import partial
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

import trio

from .addr import AddressError, check_host, format_hostport, outward_ipv4, parse_hostport
from .backlog import DEFAULT_BACKLOG, MAX_BACKLOG, BacklogConfig
from .codec import Limits
from .commands import nick_problem
from .config import Config
from .discovery_policy import DISCOVERY_PORT, DiscoveryConfig
from .files import FileError, FilesConfig
from .files_io import user_path
from .flood_flags import add_flood_flags, flood_from_args
from .identity import KeyFileError, default_path, load_or_create
from .identity.stages import IdentityConfig
from .launch import (
    WebBindError,
    explain,
    find,
    hold_standard_fds,
    run_headless_node,
    run_with_web,
    setup_logging,
    web_notes,
)
from .node import Node
from .routing.overlay import OverlayConfig
from .sanitize import for_terminal
from .store.flags import add_history_flags, check_history_flags, open_stage

log = logging.getLogger("whisper")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + traceback
        self.exit(2, f"whisper: {message} (see whisper -h)\n")


ROUTINGS = ("flood", "overlay")
DEFAULT_ROUTING = "overlay"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="whisper",
        description="A peer-to-peer chat daemon for the whispernet.",
        allow_abbrev=False,
    )
    p.add_argument("-nick", "--nick", default="", help="your nick")
    p.add_argument(
        "-peer",
        "--peer",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="a peer to join through (repeatable)",
    )
    p.add_argument("-port", "--port", type=int, default=55555, help="port to listen on (0: any)")
    p.add_argument(
        "-host",
        "--host",
        default=None,
        metavar="IP",
        help="address to bind and advertise (default: this machine's outward IPv4)",
    )
    p.add_argument(
        "-headless",
        "--headless",
        action="store_true",
        help="no terminal UI: stdin lines are sent, messages printed (implied without a tty)",
    )
    p.add_argument("-json", "--json", action="store_true", help="headless: print JSON lines")
    p.add_argument(
        "-json-file-contents",
        "--json-file-contents",
        action="store_true",
        help="with -json: keep a file message's FileContents (base64) in its line",
    )
    p.add_argument(
        "-random-ids",
        "--random-ids",
        action="store_true",
        help="send random IDs instead of hashed ones",
    )
    p.add_argument(
        "-max-message-size",
        "--max-message-size",
        type=int,
        default=None,
        metavar="BYTES",
        help="drop a connection that sends a larger message (default 1 MiB)",
    )
    p.add_argument(
        "-discovery-port",
        "--discovery-port",
        type=int,
        default=None,
        metavar="N",
        help=f"UDP port for LAN discovery announcements (default {DISCOVERY_PORT}; a peer"
        " bound to loopback takes part in discovery only when this is given)",
    )
    p.add_argument(
        "-no-discovery",
        "--no-discovery",
        action="store_true",
        help="neither announce ourselves nor listen for peers on UDP",
    )
    p.add_argument(
        "-routing",
        "--routing",
        choices=ROUTINGS,
        default=DEFAULT_ROUTING,
        help=f"how messages travel (default {DEFAULT_ROUTING}): overlay keeps a few neighbours"
        " and pushes along a tree (extension 14; old peers are still sent everything); flood"
        " links to every peer and sends every message to each",
    )
    p.add_argument(
        "-no-listen",
        "--no-listen",
        action="store_true",
        help="do not listen (behind NAT: nobody can dial us); the peers we dial are asked to"
        " send to us over the connection we opened (-port still names us in Addr)",
    )
    p.add_argument(
        "-backlog",
        "--backlog",
        type=int,
        default=DEFAULT_BACKLOG,
        metavar="N",
        help=f"replay the last N messages to each peer we connect to (default {DEFAULT_BACKLOG}, "
        "0: off)",
    )
    p.add_argument(
        "-downloads",
        "--downloads",
        default=None,
        metavar="DIR",
        help="save received files into DIR as they arrive (default: only when you /save)",
    )
    add_flood_flags(p)  # -flood-rate N ... and -no-flood-control (flood_flags.py)
    add_history_flags(p)  # -history PATH, -no-history, -history-days N (store/flags.py)
    p.add_argument(
        "-identity",
        "--identity",
        default=None,
        metavar="PATH",
        help="the key file that signs our messages and opens DMs to us (made if missing; "
        "default: identity.key in the data directory)",
    )
    p.add_argument(
        "-http",
        "--http",
        default=None,
        metavar="HOST:PORT",
        help="serve the web interface and JSON API there (port 0: any free one); "
        "the token is random, or $WHISPER_HTTP_TOKEN",
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    p.add_argument("-version", "--version", action="version", version=f"whisper {_version()}")
    return p


def _version() -> str:
    try:
        return package_version("whisper-p2p")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def config_from_args(args: argparse.Namespace) -> Config:
    if not 0 <= args.port <= 65535:
        raise AddressError(f"-port {args.port}: must be 0-65535")
    if args.nick and (problem := nick_problem(args.nick)):
        raise AddressError(f"-nick {args.nick!r}: {problem}")
    peers = []
    for text in args.peer:
        host, port = parse_hostport(text)
        try:
            check_host(host)
        except AddressError as exc:
            raise AddressError(f"-peer {text!r}: {exc}") from None
        peers.append(format_hostport(host, port))
    config = Config(
        host=args.host or outward_ipv4(),
        port=args.port,
        nick=args.nick,
        peers=peers,
        hashed_ids=not args.random_ids,
    )
    if args.discovery_port is not None and not 1 <= args.discovery_port <= 65535:
        raise AddressError(f"-discovery-port {args.discovery_port}: must be 1-65535")
    if args.no_discovery or (args.discovery_port is None and _loopback(config.host)):
        config.discovery = None
    else:
        config.discovery = DiscoveryConfig(args.discovery_port or DISCOVERY_PORT)
    if args.no_listen:
        if args.port == 0:
            raise AddressError("-no-listen needs -port N: it names you in Addr (any free N)")
        config.listen = False
    if args.routing == "overlay":
        config.routing = OverlayConfig()
    if not 0 <= args.backlog <= MAX_BACKLOG:
        raise AddressError(f"-backlog {args.backlog}: must be 0-{MAX_BACKLOG}")
    config.backlog = BacklogConfig(entries=args.backlog)
    if args.downloads is not None:
        try:
            downloads = user_path(args.downloads)
        except FileError as exc:
            raise AddressError(f"-downloads {exc}") from None
        if not downloads.is_dir():
            raise AddressError(f"-downloads {args.downloads}: not a directory")
        config.files = FilesConfig(downloads=downloads.resolve())
    if args.max_message_size is not None:
        if args.max_message_size < 1024:
            raise AddressError("-max-message-size must be at least 1024")
        config.limits = Limits(max_size=args.max_message_size)
    try:
        config.flood = flood_from_args(args)
        check_history_flags(args)
    except ValueError as exc:
        raise AddressError(str(exc)) from None
    return config


def _identity(path: str | None) -> IdentityConfig:
    """Extension 13: our key pair, from ``-identity PATH`` or the data directory."""
    try:
        where = default_path() if path is None else user_path(path)
    except FileError as exc:
        raise KeyFileError(f"-identity {exc}") from None
    identity, made = load_or_create(where)
    if made:
        log.debug("made a new identity in %s", where)
    return IdentityConfig(identity)


def _loopback(host: str) -> bool:
    """A private peer on this machine: it hears no announcements and dials none unless
    asked (``-discovery-port``); else it would join whatever any process here announced."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower().removesuffix(".") == "localhost"


def main(argv: Sequence[str] | None = None) -> int:
    hold_standard_fds()
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except AddressError as exc:
        print(f"whisper: {exc} (see whisper -h)", file=sys.stderr)
        return 2
    try:
        http = None if args.http is None else parse_hostport(args.http, allow_port_zero=True)
    except AddressError as exc:
        print(f"whisper: -http {exc} (see whisper -h)", file=sys.stderr)
        return 2
    try:
        config.identity = _identity(args.identity)
    except KeyFileError as exc:
        print(f"whisper: {exc}", file=sys.stderr)
        return 1
    setup_logging(args.verbose, headless=not _use_tui(args))
    node = Node(config)
    history, problem = open_stage(args)
    if problem is not None:  # the peer still runs, without history
        print(f"whisper: warning: {for_terminal(problem)}", file=sys.stderr, flush=True)
    if history is not None:
        history.attach(node)
        node.run = partial(history.run, node.run)  # type: ignore[method-assign]
    web = None
    if http is not None:
        from .web import WebServer

        web = WebServer(node, *http)
    try:
        if _use_tui(args):
            from .tui import run_tui

            notes = None
            if web is not None:  # the terminal UI starts node.run in its nursery
                node.run = partial(run_with_web, node.run, web)  # type: ignore[method-assign]
                notes = partial(web_notes, web)
            run_tui(node, show_log=args.verbose > 0, notes=notes)
        else:
            trio.run(run_headless_node, node, args, web)
    except BaseException as exc:
        if find(exc, KeyboardInterrupt):
            return 0
        bind_error = find(exc, WebBindError)
        if bind_error is not None and http is not None:
            print(f"whisper: {explain(bind_error.error, *http, '-http')}", file=sys.stderr)
            return 1
        error = find(exc, OSError)
        if error is None:
            raise
        print(f"whisper: {explain(error, config.host, config.port)}", file=sys.stderr)
        return 1
    return 0


def _use_tui(args: argparse.Namespace) -> bool:
    """The terminal UI when a person is at a terminal; headless for pipes, -headless, -json."""
    if args.headless or args.json or sys.stdin is None or sys.stdout is None:
        return False  # Python sets them to None when started with them closed
    return sys.stdin.isatty() and sys.stdout.isatty()
