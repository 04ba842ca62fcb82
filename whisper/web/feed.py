"""``WS /api/feed``: the live feed, one websocket per page.

Rules:
- A frame is one or more events, one JSON object a line (``{"Event": "message", ...}``):
  exactly one unless events arrived faster than the feed sends (at most one frame a
  ``Hub.tick``, every ``hub.FRAME_INTERVAL``: each frame costs a system call, and 100
  browsers must cost the node little).  JSON text never holds a raw newline, so
  ``frame.split("\\n")`` always gives whole events.
- On connect the feed says who we are (``me``, with the cursor ``Next``), the peers and who
  is online, then messages: those after ``?since=CURSOR`` (a page coming back after a
  reconnection), else the newest ``HISTORY``.  Then everything as it happens: ``message``,
  ``notice``, ``peers``, ``users``, ``me``, and ``missed`` when this feed fell behind the
  ring (``hub.py``).
- A reader task runs beside the writer: hypercorn silently drops frames sent to a socket
  the client closed, so only a receive sees the disconnect.  Whatever the client sends is
  read and ignored.
- The feed ends with close code 1001 (going away) when the server shuts down or the task is
  cancelled; a stalled client cannot hold shutdown (``server.py`` sets a TCP user timeout).
"""

from __future__ import annotations

import contextlib

import trio
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .hub import Hub, Listener

HISTORY = 200
CLOSE_TIMEOUT = 1.0
GOING_AWAY = 1001


def _since(websocket: WebSocket) -> int | None:
    text = websocket.query_params.get("since", "")
    if text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)
    return None


class Feed:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def serve(self, websocket: WebSocket) -> None:
        await websocket.accept()
        hub = self.hub
        since = _since(websocket)
        cursor = since if since is not None else max(0, hub.ring.last_seq - HISTORY)
        listener = hub.attach(cursor)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_read_until_closed, websocket, nursery.cancel_scope)
                await websocket.send_text("\n".join(hub.snapshot_lines()))
                await self._write(websocket, listener)
                nursery.cancel_scope.cancel()
        except WebSocketDisconnect:
            pass
        finally:
            hub.detach(listener)
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                await _close(websocket)

    async def _write(self, websocket: WebSocket, listener: Listener) -> None:
        while not listener.closed:
            frame = listener.frame(self.hub.ring)
            if frame:
                await websocket.send_text(frame)
                await self.hub.tick()
            else:
                await listener.wait()


async def _read_until_closed(websocket: WebSocket, scope: trio.CancelScope) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            scope.cancel()
            return


async def _close(websocket: WebSocket) -> None:
    if websocket.application_state is WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(GOING_AWAY)
