"""The Go reference peer: a stand-in built from the facts, and the real one when we have it.

``GoPeer`` is a stand-in built from the facts in ../shared/reference/README.md.

It is deliberately faithful to the Go peer's quirks, so that interop tests exercise them:
nick under the key ``omitempty``; ``Timestamp`` in seconds and required to be an integer
(anything else drops the connection); keys matched case-insensitively; relays re-encode its
own struct (unknown keys stripped, missing ones filled with "" / 0, ``<>&`` escaped) to every
dialled peer *including* the message's ``Addr``; dials ``Addr`` after relaying; a missing or
empty Body "crashes" it (``crashed`` is set and it stops everything).

``RealGoPeer`` runs the real binary named by ``$WHISPER_GO_PEER`` (``go_peer_binary()`` skips
the test when it is unset).  It binds the first non-loopback IPv4 address it finds and
broadcasts to 255.255.255.255:5555 at start, so it is only ever run inside a lab namespace
(``netns.py``) that has a LAN address of its own, and with its HTTP server on that
namespace's loopback.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time

import pytest
import trio

from whisper.codec import Decoder, Violation

from .netns import InNamespace

FIELDS = ("ID", "Addr", "Body", "omitempty", "Timestamp")


def go_encode(struct: dict) -> bytes:
    text = json.dumps({k: struct[k] for k in FIELDS}, separators=(",", ":"), ensure_ascii=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    return (text + "\n").encode()


class GoPeer:
    def __init__(self, nick: str) -> None:
        self.nick = nick
        self.addr = ""
        self.seen: set[str] = set()
        self.links: dict[str, trio.MemorySendChannel[bytes]] = {}
        self.displayed: list[str] = []
        self.crashed = False
        self._changed = trio.Event()
        self._nursery: trio.Nursery | None = None

    async def run(self, peer: str | None = None, *, task_status=trio.TASK_STATUS_IGNORED):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.addr = f"127.0.0.1:{listeners[0].socket.getsockname()[1]}"
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(trio.serve_listeners, self._serve, listeners)
            if peer:
                self._dial(peer)
            task_status.started()

    def say(self, body: str) -> None:
        struct = {
            "ID": secrets.token_hex(8),
            "Addr": self.addr,
            "Body": body,
            "omitempty": self.nick,
            "Timestamp": int(time.time()),
        }
        self.seen.add(struct["ID"])
        self._broadcast(go_encode(struct))

    async def wait_for(self, line: str) -> None:
        while line not in self.displayed:
            await self._changed.wait()

    async def _serve(self, stream: trio.SocketStream) -> None:
        decoder = Decoder()
        async with stream:
            while data := await stream.receive_some(65536):
                for obj in decoder.feed(data):
                    if isinstance(obj, Violation) or not self._handle(obj):
                        return  # json.Decoder error: close the connection

    def _handle(self, obj: dict) -> bool:
        folded = {k.lower(): v for k, v in obj.items()}
        struct = {k: folded.get(k.lower(), 0 if k == "Timestamp" else "") for k in FIELDS}
        if type(struct["Timestamp"]) is not int:
            return False
        if not isinstance(struct["Body"], str) or not struct["Body"]:
            self.crashed = True  # index out of range in the Go peer
            assert self._nursery is not None
            self._nursery.cancel_scope.cancel()
            return False
        if struct["ID"] in self.seen:
            return True
        self.seen.add(struct["ID"])
        self.displayed.append(f"{struct['omitempty'] or struct['Addr']}: {struct['Body']}")
        self._changed.set()
        self._changed = trio.Event()
        self._broadcast(go_encode(struct))
        self._dial(struct["Addr"])
        return True

    def _broadcast(self, data: bytes) -> None:
        for channel in self.links.values():
            channel.send_nowait(data)

    def _dial(self, addr: str) -> None:
        if addr == self.addr or addr in self.links:
            return
        send, receive = trio.open_memory_channel[bytes](10_000)
        self.links[addr] = send
        assert self._nursery is not None
        self._nursery.start_soon(self._link, addr, receive)

    async def _link(self, addr: str, queue: trio.MemoryReceiveChannel[bytes]) -> None:
        host, port = addr.rsplit(":", 1)
        try:
            stream = await trio.open_tcp_stream(host, int(port))
        except OSError:
            return
        async with stream:
            async for data in queue:
                await stream.send_all(data)


GO_PEER_VARIABLE = "WHISPER_GO_PEER"


def go_peer_binary() -> str:
    """The real Go peer's binary, from ``$WHISPER_GO_PEER``; skips the test without one."""
    path = os.environ.get(GO_PEER_VARIABLE, "")
    if not path:
        pytest.skip(
            f"{GO_PEER_VARIABLE} is not set: point it at a binary of the Go reference peer "
            "that you built yourself (README: Testing against the real Go peer)"
        )
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.skip(f"{GO_PEER_VARIABLE}={path} is not an executable file")
    return path


class RealGoPeer(InNamespace):
    """The real Go peer in lab namespace ``ns``: stdin is what it types, stdout what it shows."""

    def __init__(self, ns: str, binary: str, *args: str) -> None:
        super().__init__(ns, binary, "-port", "0", "-http", "127.0.0.1:0", *args)

    async def start(self, nursery: trio.Nursery, **popen) -> RealGoPeer:
        await super().start(nursery, wait_listening=False, **popen)
        line = await self.wait_line("stderr", r"Listening on \S+")
        self.addr = re.search(r"Listening on (\S+)", line).group(1)
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None
