"""The local JSON API: handlers of a few lines each: parse, call the bridge, render.

Rules:
- Messages use the wire field names (``store.py``); the cursor (``Seq``, ``next``,
  ``before``) is the history's ``seq`` when history is on (the same in the feed, the ring and
  the store), else this run's own sequence.  ``GET /api/messages``: without ``since`` the
  newest ``limit`` (and ``before``, as below); with it the oldest ``limit`` after it,
  ``wait`` seconds (at most ``MAX_WAIT``: hypercorn on trio does not notice a client that
  went away) for one to arrive if there is none yet; with ``before`` the newest ``limit``
  older than it, oldest first, and ``before`` to ask for the page before that (null: there
  is none).  What the web's ring no longer holds comes from the history: paging back
  reaches its first message.  With history off, paging stops at the oldest the ring holds.
- Bad input gets a status and ``{"error": ...}`` (``jsonio.py``, ``bridge.Refused``): a
  broken query value or body 400, too large 413, flood control 429, nothing there 404.
- Received files go out as attachments (``application/octet-stream``, ``nosniff``, a
  sandbox CSP): never rendered in our origin, where an HTML or SVG file from a peer would be
  a script.  ``/preview`` serves only PNG, JPEG, GIF and WebP whose bytes say so, under the
  type the bytes say, not the one the peer claimed.
- ``GET /api/search?q=TEXT`` searches the history (full text; ``before``: a result's
  ``Seq``, for the next page); 503 when history is off.
- Uploads are the raw body (``POST /api/files?name=cat.gif``), sent as ``/send`` would.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .bridge import Bridge
from .hub import Hub
from .jsonio import BadRequest, parse_object, read_body, text_field
from .store import file_record, preview_type, stored_record

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_WAIT = 25.0
#: A command or nick body: a line a person typed, plus JSON around it.
SMALL_BODY = 64 * 1024
MAX_NAME = 255


def stored_file_record(stored: Any) -> dict[str, Any]:
    record = file_record(stored)
    record.update(From=stored.sender, Received=round(stored.received, 3))
    return record


def _int(request: Request, name: str, default: int | None, maximum: int) -> int | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise BadRequest(400, f"{name} must be a whole number")
    return min(int(text), maximum)


def _seconds(request: Request, name: str, maximum: float) -> float:
    text = request.query_params.get(name, "")
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(400, f"{name} must be a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise BadRequest(400, f"{name} must be a number of seconds")
    return min(value, maximum)


class Api:
    def __init__(self, bridge: Bridge, hub: Hub) -> None:
        self.bridge = bridge
        self.hub = hub

    def routes(self) -> list[Route]:
        return [
            Route("/api/messages", self.messages, methods=["GET"]),
            Route("/api/messages", self.send, methods=["POST"]),
            Route("/api/users", self.users, methods=["GET"]),
            Route("/api/peers", self.peers, methods=["GET"]),
            Route("/api/peers", self.connect, methods=["POST"]),
            Route("/api/peers/{addr:path}", self.disconnect, methods=["DELETE"]),
            Route("/api/files", self.files, methods=["GET"]),
            Route("/api/files", self.upload, methods=["POST"]),
            Route("/api/files/{number:int}", self.download, methods=["GET"]),
            Route("/api/files/{number:int}/preview", self.preview, methods=["GET"]),
            Route("/api/me", self.me, methods=["GET"]),
            Route("/api/me", self.set_me, methods=["PUT", "POST"]),
            Route("/api/commands", self.command, methods=["POST"]),
            Route("/api/search", self.search, methods=["GET"]),
        ]

    async def messages(self, request: Request) -> Response:
        ring = self.hub.ring
        limit = _int(request, "limit", DEFAULT_LIMIT, MAX_LIMIT) or DEFAULT_LIMIT
        since = _int(request, "since", None, 1 << 62)
        before = _int(request, "before", None, 1 << 62)
        wait = _seconds(request, "wait", MAX_WAIT)
        if before is not None:
            if since is not None:
                raise BadRequest(400, "since and before: give one")
            return JSONResponse(await self._page_back(before, limit))
        if since is None:  # the newest: as a page back from past the newest
            body = await self._page_back(ring.last_seq + 1, limit)
            return JSONResponse({**body, "next": ring.last_seq, "missed": 0})
        if wait and since >= ring.last_seq:
            await self.hub.wait_for_message(since, wait)
        if self.bridge.history_on and since < ring.first_seq - 1:  # the ring forgot: stored
            stored = await self.bridge.since(since, limit)
            nxt = stored[-1].seq if stored else since
            body = {"messages": [stored_record(s) for s in stored], "next": nxt, "missed": 0}
            return JSONResponse(body)
        missed = ring.missed(since)
        entries = ring.after(since, limit)
        nxt = entries[-1].seq if entries else min(since, ring.last_seq)
        body = {"messages": [e.record() for e in entries], "next": nxt, "missed": missed}
        return JSONResponse(body)

    async def _page_back(self, before: int, limit: int) -> dict[str, Any]:
        """The newest ``limit`` older than ``before``: the ring's, then the history's."""
        records = [e.record() for e in self.hub.ring.before(before, limit)]
        older = records[0]["Seq"] if records else before
        more = len(records) == limit
        if len(records) < limit and self.bridge.history_on:
            stored = await self.bridge.page(older, limit - len(records) + 1)
            more = len(stored) > limit - len(records)
            records[:0] = [stored_record(s) for s in stored[int(more) :]]
        first = records[0]["Seq"] if records else None
        return {"messages": records, "before": first if more else None}

    async def search(self, request: Request) -> Response:
        """``?q=TEXT[&limit=N][&before=SEQ]``: the history, newest first (503: it is off)."""
        text = request.query_params.get("q", "").strip()
        if not text:
            raise BadRequest(400, "q must be the text to search for")
        limit = _int(request, "limit", DEFAULT_LIMIT, MAX_LIMIT) or DEFAULT_LIMIT
        before = _int(request, "before", None, 1 << 62)
        found = await self.bridge.search(text, limit, before)
        return JSONResponse({"messages": [stored_record(s) for s in found]})

    async def send(self, request: Request) -> Response:
        obj = parse_object(await read_body(request, self.bridge.max_message_size))
        return JSONResponse(self.bridge.say(text_field(obj, "Body")), status_code=201)

    async def users(self, request: Request) -> Response:
        hub = self.hub
        return JSONResponse({**hub.who(), "window": hub.users.window, "me": hub.state})

    async def peers(self, request: Request) -> Response:
        return JSONResponse({"peers": self.bridge.peers()})

    async def connect(self, request: Request) -> Response:
        obj = parse_object(await read_body(request, SMALL_BODY))
        result = await self.bridge.connect(text_field(obj, "Addr"))
        self.hub.refresh()
        return JSONResponse(result, status_code=202)

    async def disconnect(self, request: Request) -> Response:
        addr = self.bridge.disconnect(request.path_params["addr"])
        self.hub.refresh()
        return JSONResponse({"Addr": addr})

    async def files(self, request: Request) -> Response:
        records = [stored_file_record(f) for f in self.bridge.files()]
        return JSONResponse({"files": records, "max_size": self.bridge.max_file_size})

    async def upload(self, request: Request) -> Response:
        name = request.query_params.get("name", "")
        if not name.strip() or len(name) > MAX_NAME:
            raise BadRequest(400, f"name must be a file name of 1-{MAX_NAME} characters")
        data = await read_body(request, self.bridge.max_file_size)
        mime = request.headers.get("content-type", "").split(",")[0].strip()
        return JSONResponse(self.bridge.send_file(name, mime, data), status_code=201)

    async def download(self, request: Request) -> Response:
        stored = self.bridge.file(request.path_params["number"])
        ascii_name = stored.name.encode("ascii", "replace").decode().replace('"', "_")
        disposition = (
            f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(stored.name)}"
        )
        headers = {"content-disposition": disposition, "content-security-policy": "sandbox"}
        return Response(stored.data, media_type="application/octet-stream", headers=headers)

    async def preview(self, request: Request) -> Response:
        stored = self.bridge.file(request.path_params["number"])
        mime = preview_type(stored.data[:16])
        if mime is None:
            raise BadRequest(415, "only PNG, JPEG, GIF and WebP images are previewed")
        headers = {"content-security-policy": "sandbox", "cache-control": "private, max-age=3600"}
        return Response(stored.data, media_type=mime, headers=headers)

    async def me(self, request: Request) -> Response:
        return JSONResponse(self.hub.state)

    async def set_me(self, request: Request) -> Response:
        obj = parse_object(await read_body(request, SMALL_BODY))
        await self.bridge.set_nick(text_field(obj, "Nick").strip())
        self.hub.refresh()
        return JSONResponse(self.hub.state)

    async def command(self, request: Request) -> Response:
        obj = parse_object(await read_body(request, self.bridge.max_message_size))
        line = text_field(obj, "Line")
        if line.split(maxsplit=1)[0].lower() == "/quit":
            lines = ["/quit leaves the terminal UI; here, close the tab (whisper keeps running)"]
            return JSONResponse({"lines": lines, "clear": False})
        reply = await self.bridge.execute(line)
        self.hub.refresh()
        return JSONResponse({"lines": reply.lines, "clear": reply.clear})
