"""The web front end's one door into the node.

Rules:
- Everything in ``whisper.web`` reaches the node through a ``Bridge`` and nothing else.  It
  uses the node's public interface only: ``subscribe()``, ``commands.execute``, ``say``,
  ``connect``, ``disconnect``, ``nick`` and ``addr``, and the snapshots ``peers()``,
  ``files()`` and ``file(n)``.
- What the user may do fails as a ``Refused`` carrying the HTTP status that says why: 400
  for bad input, 404 for nothing there, 413 for too large, 429 for a send that flood control
  refuses (we would be sending faster than peers accept).  The text is one line for a person.
- Slash commands are ``commands.execute``'s, with its replies, so that the page behaves as
  the terminal UI does; ``/nick`` and ``/connect`` from the API go through it too, for the
  same checks and words.
- Snapshots are plain JSON-ready dicts; times in them are wall-clock seconds.
"""

from __future__ import annotations

import base64
import contextlib
import mimetypes
import time
from collections.abc import Iterator
from typing import Any

from .. import files
from ..addr import AddressError, format_hostport, parse_hostport
from ..commands import Reply, execute
from ..flood import OwnLimit
from ..node import Node
from ..store.errors import HistoryError
from ..subscription import Subscription


class Refused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class Bridge:
    def __init__(self, node: Node) -> None:
        self._node = node

    # -- who we are ------------------------------------------------------------------

    @property
    def nick(self) -> str:
        return self._node.nick

    @property
    def addr(self) -> str:
        return self._node.addr

    @property
    def max_message_size(self) -> int:
        return self._node.config.limits.max_size

    @property
    def max_file_size(self) -> int:
        return files.max_file_size(self.max_message_size)

    # -- events ------------------------------------------------------------------------

    @contextlib.contextmanager
    def subscribe(self, buffer: int, max_bytes: int) -> Iterator[Subscription]:
        with self._node.subscribe(buffer, max_bytes) as events:
            yield events

    # -- acting ------------------------------------------------------------------------

    async def execute(self, line: str) -> Reply:
        return await execute(self._node, line)

    def say(self, body: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a message; its wire ID and Timestamp."""
        if not body.strip():
            raise Refused(400, "Body is empty: nothing to send")
        try:
            if self._node.identity is not None:  # in the channel joined (extension 13)
                body, extra = self._node.identity.compose(body, extra)
            message = self._node.say(body, extra)
        except OwnLimit as exc:
            raise Refused(429, f"not sent: {exc}") from None
        except ValueError as exc:  # the node's words: "message too long: ..." or empty
            raise Refused(413 if "too long" in str(exc) else 400, f"not sent: {exc}") from None
        return {"ID": message.id, "Timestamp": message.timestamp or 0}

    def send_file(self, name: str, mime: str, data: bytes) -> dict[str, Any]:
        """Send ``data`` as a file message (extension 10), as ``/send`` does for a path."""
        if len(data) > self.max_file_size:
            raise Refused(
                413,
                f"{files.human_size(len(data))} is too large: a file message must fit in "
                f"{files.human_size(self.max_message_size)}, so files up to "
                f"{files.human_size(self.max_file_size)}",
            )
        mime = mimetypes.guess_type(name)[0] or mime or files.DEFAULT_TYPE
        safe = files.safe_name(name, mime)
        extra = {
            files.NAME_KEY: safe,
            files.TYPE_KEY: mime,
            files.CONTENTS_KEY: base64.b64encode(data).decode("ascii"),
        }
        checked = files.parse(extra, self.max_file_size)  # what every receiver will check
        if isinstance(checked, files.RejectedFile):
            raise Refused(400, f"not sent: {checked.reason}")
        sent = self.say(files.describe(safe, len(data), mime), extra)
        return {**sent, "Name": safe, "Type": mime, "Size": len(data)}

    async def set_nick(self, nick: str) -> str:
        reply = await self.execute(f"/nick {nick}")
        if not nick or self._node.nick != nick:
            raise Refused(400, reply.lines[0] if reply.lines else "not a valid nick")
        return nick

    async def connect(self, text: str) -> dict[str, str]:
        addr = _canonical(text)
        reply = await self.execute(f"/connect {addr}")
        return {"Addr": addr, "Text": " ".join(reply.lines)}

    def disconnect(self, text: str) -> str:
        addr = _canonical(text)
        if not self._node.disconnect(addr):
            raise Refused(404, f"no link to {addr}")
        return addr

    # -- looking -----------------------------------------------------------------------

    def peers(self) -> list[dict[str, Any]]:
        """Every link: outgoing ones we dial, then incoming connections, with their state."""
        now = time.time()
        return [
            {
                "Addr": p.addr,
                "Direction": "out" if p.outgoing else "in",
                "State": p.state,
                "Since": round(now - p.seconds),
                "Error": p.last_error,
            }
            for p in self._node.peers()
        ]

    def online(self) -> list[dict[str, Any]]:
        """Who is online by presence (``node.users()``), ourselves first."""
        now = time.time()
        return [
            {
                "Nick": u.nick,
                "Addr": u.addr,
                "LastSeen": round(now - u.seconds),
                "Linked": u.linked,
                "You": u.you,
            }
            for u in self._node.users()
        ]

    async def search(self, text: str, limit: int, before: int | None) -> list[Any]:
        return await search(self._node, text, limit, before)

    async def number_messages(self) -> int | None:
        """With history on: have messages shown numbered by the store (``Delivered.seq``)
        and return the newest ``seq``; None when history is off."""
        history = self._node.history
        if history is None or not history.on:
            return None
        history.numbered = True
        try:
            return await history.last_seq()
        except HistoryError:
            return None

    @property
    def history_on(self) -> bool:
        history = self._node.history
        return history is not None and history.on

    async def page(self, before: int | None, limit: int) -> list[Any]:
        """The history's ``limit`` messages older than ``before``, oldest first."""
        return await _stored(self._node, "page", before, limit)

    async def since(self, after: int, limit: int) -> list[Any]:
        """The history's ``limit`` messages newer than ``after``, oldest first."""
        return await _stored(self._node, "since", after, limit)

    def files(self) -> list[files.StoredFile]:
        return self._node.files()

    def file(self, number: int) -> files.StoredFile:
        stored = self._node.file(number)
        if isinstance(stored, str):
            raise Refused(404, stored)
        return stored


async def search(node: Node, text: str, limit: int, before: int | None) -> list[Any]:
    """The history's messages holding every word of ``text``, newest first (``Stored``)."""
    return await _stored(node, "search", text, limit, before)


async def _stored(node: Node, what: str, *args: Any) -> list[Any]:
    """``node.history.<what>(*args)``; 503 when history is off or fails."""
    history = node.history
    if history is None or not history.on:
        raise Refused(503, "history is off (-no-history, or it could not be used)")
    try:
        return await getattr(history, what)(*args)
    except HistoryError as exc:
        raise Refused(503, str(exc)) from None


def _canonical(text: str) -> str:
    try:
        return format_hostport(*parse_hostport(text))
    except AddressError as exc:
        raise Refused(400, str(exc)) from None
