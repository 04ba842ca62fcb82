"""Who may talk to the web front end: a token, our own Host, our own Origin.

A page on localhost is reachable by every web site the user visits, so every request is
checked before any handler runs (``Guard``, plain ASGI middleware).  Rules:

- ``Host`` must name us: our bound address or ``localhost``, with our port (a bare name only
  on port 80).  A wildcard bind accepts the machine's own addresses.  Anything else is
  refused (DNS rebinding: a hostile name that resolves to 127.0.0.1).
- An ``Origin`` header, when sent, must be ``http://`` plus one of those hosts, on every
  request and every websocket (cross-site request forgery, websocket hijacking).
- The page, the API and the feed need the token: ``Authorization: Bearer TOKEN``, or the
  cookie the page gets.  The page's own address carries it once (``/?token=...``, as
  Jupyter does); the page then trades it for the cookie: HttpOnly, SameSite=Strict, and named
  after our port, because cookies ignore ports (two whispers on one machine keep theirs).
  The static files (our own code, no secret) need no token.
- Tokens are compared as bytes in constant time (``hmac.compare_digest`` raises on
  non-ASCII ``str``).  A random token per run, or ``WHISPER_HTTP_TOKEN``.
- Refusals are JSON ``{"error": ...}`` under ``/api``, a short page elsewhere: 400 for a
  bad Host, 403 for a foreign Origin, 401 without the token.  A refused websocket gets the
  same answer as an HTTP response, never an accepted socket.
- Every response carries ``X-Content-Type-Options: nosniff``, ``Referrer-Policy:
  no-referrer`` and a Content-Security-Policy without inline scripts (``CSP``).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from collections.abc import Iterable
from urllib.parse import parse_qs

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..addr import format_hostport
from .jsonio import error_body

TOKEN_ENV = "WHISPER_HTTP_TOKEN"
COOKIE_PREFIX = "whisper_token_"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CSP.encode()),
]
PUBLIC_PREFIXES = ("/static/", "/favicon.ico")


def make_token() -> str:
    return os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)


def cookie_name(port: int) -> str:
    return f"{COOKIE_PREFIX}{port}"


def allowed_hosts(host: str, port: int, local_addresses: Iterable[str] = ()) -> set[str]:
    """The ``Host`` header values that name us (see the module rules)."""
    names = {host, "localhost"}
    try:
        if ipaddress.ip_address(host).is_unspecified:
            names |= {"127.0.0.1", "::1", *local_addresses}
    except ValueError:
        pass  # a name: only itself and localhost
    hosts = {format_hostport(name, port).lower() for name in names}
    if port == 80:
        hosts |= {(f"[{n}]" if ":" in n else n).lower() for n in names}
    return hosts


class Guard:
    def __init__(self, app: ASGIApp, *, token: str, port: int, hosts: set[str]) -> None:
        self.app = app
        self.token = token.encode()
        self.cookie = cookie_name(port)
        self.hosts = hosts
        self.origins = {f"http://{h}" for h in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self.check(scope)
        if refusal is not None:
            await _refuse(scope, send, *refusal)
            return
        if scope["type"] == "websocket":  # frames go straight through: no headers to add
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                message["headers"] = [*message.get("headers", []), *COMMON_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def check(self, scope: Scope) -> tuple[int, str] | None:
        """None if the request may go on; else the status and why."""
        headers = _headers(scope)
        host = headers.get(b"host", b"").decode("latin-1").lower()
        if host not in self.hosts:
            return 400, "this Host is not ours: open whisper by the address it printed"
        origin = headers.get(b"origin")
        if origin is not None and origin.decode("latin-1").lower() not in self.origins:
            return 403, "requests from other web sites are refused"
        path: str = scope["path"]
        if path.startswith(PUBLIC_PREFIXES) or self.authorized(scope, headers):
            return None
        return 401, "the token is missing or wrong: open the address whisper printed"

    def authorized(self, scope: Scope, headers: dict[bytes, bytes]) -> bool:
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer " and hmac.compare_digest(auth[7:].strip(), self.token):
            return True
        cookies = cookie_parser(headers.get(b"cookie", b"").decode("latin-1"))
        cookie = cookies.get(self.cookie, "").encode("latin-1", "replace")
        if cookie and hmac.compare_digest(cookie, self.token):
            return True
        if scope["path"] == "/" and scope["type"] == "http":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = query.get("token", [""])[0].encode("utf-8", "replace")
            return bool(given) and hmac.compare_digest(given, self.token)
        return False


def _headers(scope: Scope) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", []):
        found.setdefault(name.lower(), value)  # the first of each: a second Host is ignored
    return found


async def _refuse(scope: Scope, send: Send, status: int, text: str) -> None:
    if scope["path"].startswith("/api/") or scope["type"] == "websocket":
        body, kind = error_body(text), b"application/json"
    else:
        body, kind = _page(status, text), b"text/html; charset=utf-8"
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    headers += COMMON_HEADERS
    prefix = "websocket." if scope["type"] == "websocket" else ""
    if prefix and "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": f"{prefix}http.response.start", "status": status, "headers": headers})
    await send({"type": f"{prefix}http.response.body", "body": body})


def _page(status: int, text: str) -> bytes:
    return (
        f'<!doctype html><meta charset="utf-8"><title>whisper</title><p>{status}: {text}.</p>'
    ).encode()
