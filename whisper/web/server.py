"""Serving the web front end: hypercorn's trio worker, in the node's nursery.

Rules:
- ``WebServer.run`` binds ``HOST:PORT`` itself (port 0 picks one), so that "address in use"
  is a plain ``OSError`` before anything starts, then serves the app with
  ``hypercorn.trio.serve`` and reports the page's address, token included, through
  ``task_status``.  It runs the hub beside the server.
- The listening socket has ``TCP_USER_TIMEOUT``: hypercorn writes to a socket with
  cancellation shielded, so a client that stops reading would otherwise hold a feed, and
  shutdown, for ever; with it the kernel drops such a connection after ``STALL_TIMEOUT``.
- ``stop`` shuts down gracefully: feeds are closed with 1001 and hypercorn waits at most
  ``GRACEFUL_TIMEOUT`` for requests (less than a SIGTERM-then-kill wait).  Cancelling ``run``
  also closes each feed with 1001.
- hypercorn logs through ``whisper.web.server`` at WARNING: at INFO it prints its own
  address without the token, which users would open.
- Binding an address other than loopback works; ``warning`` says what to tell the user
  (there is no TLS).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Any

import psutil
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from ..addr import format_hostport
from ..node import Node
from .app import build_app
from .auth import allowed_hosts, make_token
from .bridge import Bridge
from .hub import Hub

GRACEFUL_TIMEOUT = 1.0
STALL_TIMEOUT = 10.0
KEEP_ALIVE_TIMEOUT = 30.0
BACKLOG = 128

log = logging.getLogger("whisper.web")
server_log = logging.getLogger("whisper.web.server")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _local_addresses() -> list[str]:
    return [
        a.address.split("%")[0]
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family in (socket.AF_INET, socket.AF_INET6)
    ]


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    info = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(STALL_TIMEOUT * 1000))
        sock.bind(info[0][4])
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


class WebServer:
    def __init__(
        self, node: Node, host: str, port: int, *, token: str | None = None, **hub: Any
    ) -> None:
        """``hub``: ``Hub`` options (``max_rate``, ``buffer`` ...), for tests."""
        self.bridge = Bridge(node)
        self.hub = Hub(self.bridge, **hub)
        self.host = host
        self.port = port
        self.token = token or make_token()
        self.url = ""
        self.stopped = trio.Event()
        self._stop = trio.Event()

    @property
    def warning(self) -> str:
        """What to tell the user before they use it; empty on loopback."""
        if is_loopback(self.host):
            return ""
        return (
            f"the web interface on {format_hostport(self.host, self.port)} is reachable from "
            "other machines, without TLS: put a reverse proxy with TLS in front "
            "(the token is still required)"
        )

    def stop(self) -> None:
        """Begin a graceful shutdown; ``run`` returns once it is done."""
        self.hub.close()
        self._stop.set()

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await self._run(task_status)
        finally:
            self.stopped.set()

    async def _run(self, task_status: trio.TaskStatus[str]) -> None:
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        self.url = f"http://{format_hostport(shown, self.port)}/?token={self.token}"
        local = _local_addresses() if self.host in ("0.0.0.0", "::", "") else []
        hosts = allowed_hosts(self.host, self.port, local)
        app = build_app(self.bridge, self.hub, token=self.token, port=self.port, hosts=hosts)
        config = self._config(sock)
        async with trio.open_nursery() as nursery:

            async def serve_then_stop(*, task_status: trio.TaskStatus[list[str]]) -> None:
                await serve(app, config, shutdown_trigger=self._stop.wait, task_status=task_status)
                nursery.cancel_scope.cancel()  # the graceful shutdown is over: the hub goes too

            await nursery.start(self.hub.run)
            await nursery.start(serve_then_stop)
            task_status.started(self.url)

    def _config(self, sock: socket.socket) -> HypercornConfig:
        config = HypercornConfig()
        config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns the socket from here
        config.graceful_timeout = GRACEFUL_TIMEOUT
        config.keep_alive_timeout = KEEP_ALIVE_TIMEOUT
        config.backlog = BACKLOG
        config.include_server_header = False
        config.websocket_max_message_size = 64 * 1024  # the page sends nothing we need
        server_log.setLevel(logging.WARNING)
        config.errorlog = server_log
        config.accesslog = None
        return config
