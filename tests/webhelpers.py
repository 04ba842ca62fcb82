"""Test helpers for the web front end: a node with its web server on loopback, clients."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from whisper import Node
from whisper.web import WebServer

from .helpers import start_node

TOKEN = "test-token-1234"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Web:
    node: Node
    server: WebServer
    client: httpx.AsyncClient  # authorised: every request carries the token

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}"

    def anonymous(self, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, **kw)

    @asynccontextmanager
    async def feed(
        self, query: str = "", headers: list[tuple[str, str]] | None = None
    ) -> AsyncIterator[Feed]:
        hdrs = [("Authorization", f"Bearer {TOKEN}"), *(headers or [])]
        async with open_websocket_url(f"{self.ws_base}/api/feed{query}", extra_headers=hdrs) as ws:
            yield Feed(ws)


class Feed:
    """A websocket feed: frames split into events; waits for the event a test needs."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.frames = 0

    async def next(self) -> dict[str, Any]:
        while not self.events:
            frame = await self.ws.get_message()
            self.frames += 1
            self.events.extend(json.loads(line) for line in str(frame).split("\n"))
        return self.events.pop(0)

    async def until(self, kind: str, **match: Any) -> dict[str, Any]:
        """The next event of ``kind`` whose fields include ``match``; others are skipped."""
        while True:
            event = await self.next()
            if event["Event"] == kind and all(event.get(k) == v for k, v in match.items()):
                return event


@asynccontextmanager
async def web_node(
    nursery: trio.Nursery, hub: dict[str, Any] | None = None, **config: Any
) -> AsyncIterator[Web]:
    node = await start_node(nursery, **config)
    server = WebServer(node, "127.0.0.1", 0, token=TOKEN, **(hub or {}))
    await nursery.start(server.run)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", headers=AUTH) as c:
        yield Web(node, server, c)
