"""JSON in and out of the API: bounded bodies, parsing that cannot crash, uniform errors.

Rules:
- Every error is ``{"error": "one line"}`` with its status.
- A request body is read up to its limit.  Past the limit the rest is read and thrown away,
  up to ``DISCARD_LIMIT`` more, before answering 413: hypercorn drops a connection answered
  early without saying ``Connection: close``, and the client's next request on it fails.
  Past that too the answer says ``Connection: close``.
- ``parse_object`` accepts only a JSON object; broken JSON, invalid UTF-8, a lone surrogate
  escape, a number too long for ``int`` or nesting too deep (``RecursionError``, not
  ``ValueError``) are each a ``BadRequest`` (400), never a 500.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

DISCARD_LIMIT = 8 * 1024 * 1024


class BadRequest(Exception):
    def __init__(self, status: int, text: str, *, close: bool = False) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.close = close


def error_body(text: str) -> bytes:
    return json.dumps({"error": text}, ensure_ascii=False).encode()


def json_error(status: int, text: str, *, close: bool = False) -> JSONResponse:
    headers = {"connection": "close"} if close else None
    return JSONResponse({"error": text}, status_code=status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, at most ``limit`` bytes; ``BadRequest`` 413 past it (see the rules)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and len(declared) < 20 and int(declared) > limit + DISCARD_LIMIT:
        raise BadRequest(413, _too_large(limit), close=True)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit + DISCARD_LIMIT:
                raise BadRequest(413, _too_large(limit), close=True)
            if size <= limit:
                chunks.append(chunk)
    except ClientDisconnect:
        raise BadRequest(400, "the request body was cut short", close=True) from None
    if size > limit:
        raise BadRequest(413, _too_large(limit))
    return b"".join(chunks)


def parse_object(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise BadRequest(400, "the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadRequest(400, "the body must be a JSON object")
    return value


def text_field(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        what = "missing" if value is None else "not a string"
        raise BadRequest(400, f"{key} is {what}")
    if not value.strip():
        raise BadRequest(400, f"{key} is empty")
    return value


def _too_large(limit: int) -> str:
    return f"the body is larger than {limit} bytes"
