"""The web application: routes, the guard in front of them, and JSON for every error.

Rules:
- ``build_app`` takes the bridge and the hub and returns a ``Starlette`` app: the page at
  ``/``, its static files, the API (``api.py``) and the feed (``feed.py``), all behind the
  ``Guard`` (``auth.py``).
- Every error under ``/api`` is JSON ``{"error": ...}``, Starlette's own 404 and 405
  included (they are plain text by default); an unexpected error is a 500 in the same form,
  logged by hypercorn, and the node carries on.
- ``/?token=...`` trades the token for the cookie and redirects to ``/``, so that the token
  leaves the address bar and the browser's history.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from .api import Api
from .auth import Guard, cookie_name
from .bridge import Bridge, Refused
from .feed import Feed
from .hub import Hub
from .jsonio import BadRequest, json_error

STATIC = Path(__file__).resolve().parent / "static"


def build_app(bridge: Bridge, hub: Hub, *, token: str, port: int, hosts: set[str]) -> Starlette:
    cookie = cookie_name(port)

    async def page(request: Request) -> Response:
        if "token" in request.query_params:  # the Guard has checked it
            response: Response = RedirectResponse("/", status_code=303)
            response.set_cookie(cookie, token, httponly=True, samesite="strict", path="/")
            return response
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    routes = [
        Route("/", page, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        *Api(bridge, hub).routes(),
        WebSocketRoute("/api/feed", Feed(hub).serve),
    ]
    handlers = {
        HTTPException: _http_error,
        BadRequest: _bad_request,
        Refused: _refused,
        Exception: _unexpected,
    }
    return Starlette(
        routes=routes,
        exception_handlers=handlers,  # type: ignore[arg-type]
        middleware=[Middleware(Guard, token=token, port=port, hosts=hosts)],
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return json_error(404, f"no such path: {request.url.path[:200]}")
    if exc.status_code == 405:
        return json_error(405, f"{request.method} is not allowed on {request.url.path[:200]}")
    return json_error(exc.status_code, str(exc.detail))


async def _bad_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadRequest)
    return json_error(exc.status, exc.text, close=exc.close)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return json_error(exc.status, exc.text)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Starlette re-raises it after this answer; hypercorn logs it with its traceback.
    return json_error(500, "internal error (logged); whisper carries on")
