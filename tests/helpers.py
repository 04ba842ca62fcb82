"""Test helpers: nodes on loopback port 0, raw origin connections and sink listeners."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import trio

from whisper import Config, Delivered, Node
from whisper.codec import Decoder, Violation, encode_object
from whisper.engine.hello import banner
from whisper.events import Event
from whisper.ids import hashed_id, random_id

LOCAL = "127.0.0.1"


def now_ms() -> int:
    return int(time.time() * 1000)


def wire(body: str = "hi", *, addr: str = "127.0.0.1:1", nick: str = "", **extra: Any) -> dict:
    """A fresh valid message object, as a foreign peer would send it."""
    obj: dict[str, Any] = {"ID": random_id(), "Addr": addr, "Body": body}
    if nick:
        obj["Nick"] = nick
    obj["Timestamp"] = extra.pop("Timestamp", now_ms())
    obj.update(extra)
    return obj


def hashed(body: str, addr: str, timestamp: int | None = None) -> dict:
    ts = now_ms() if timestamp is None else timestamp
    return {"ID": hashed_id(addr, body, ts), "Addr": addr, "Body": body, "Timestamp": ts}


async def start_node(nursery: trio.Nursery, **kw: Any) -> Node:
    node = Node(Config(host=LOCAL, port=0, **kw))
    await nursery.start(node.run)
    return node


def outgoing(node: Node) -> list[str]:
    """The addresses of the node's outgoing links, whatever their state."""
    return [p.addr for p in node.peers() if p.outgoing]


def connected(node: Node) -> list[str]:
    return [p.addr for p in node.peers() if p.outgoing and p.connected]


async def linked(node: Node, *addrs: str) -> None:
    """Return once ``node`` has a connected outgoing link to each of ``addrs``."""
    with node.subscribe() as events:
        while not set(addrs) <= set(connected(node)):
            await events.receive()


async def until_event(node: Node, predicate: Callable[[Event], bool]) -> Event:
    """Wait for the first event of ``node`` that ``predicate`` accepts (from now on)."""
    with node.subscribe(buffer=100_000) as events:
        async for event in events:
            if predicate(event):
                return event
    raise AssertionError("the subscription ended")


class Inbox:
    """Collects the Delivered events of a node."""

    def __init__(self) -> None:
        self.messages: list[Delivered] = []
        self._changed = trio.Event()

    async def collect(self, node: Node, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with node.subscribe(buffer=100_000) as events:
            task_status.started()
            async for event in events:
                if isinstance(event, Delivered) and not event.own:
                    self.messages.append(event)
                    self._changed.set()
                    self._changed = trio.Event()

    @property
    def bodies(self) -> list[str]:
        return [d.message.body for d in self.messages]

    async def wait_for(self, predicate: Callable[[list[str]], bool]) -> None:
        while not predicate(self.bodies):
            await self._changed.wait()


async def inbox(nursery: trio.Nursery, node: Node) -> Inbox:
    box = Inbox()
    await nursery.start(box.collect, node)
    return box


async def notices(nursery: trio.Nursery, node: Node) -> list[str]:
    """The texts of the node's status events (everything but messages), as they come (a
    list the caller watches)."""
    texts: list[str] = []

    async def watch(task_status=trio.TASK_STATUS_IGNORED) -> None:
        with node.subscribe() as events:
            task_status.started()
            async for event in events:
                if not isinstance(event, Delivered):
                    texts.append(event.text)

    await nursery.start(watch)
    return texts


class Sink:
    """A fake peer's listening side: records every object the node sends to it."""

    def __init__(self) -> None:
        self.objects: list[dict] = []
        self.violations: list[str] = []
        self.addr = ""
        self.connections = 0
        self._changed = trio.Event()

    async def serve(self, *, rcvbuf: int | None = None, read: bool = True, task_status) -> None:
        listeners = await trio.open_tcp_listeners(0, host=LOCAL)
        if rcvbuf:
            import socket

            listeners[0].socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.addr = f"{LOCAL}:{listeners[0].socket.getsockname()[1]}"
        await trio.serve_listeners(
            self._handle if read else self._stall, listeners, task_status=task_status
        )

    async def _handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        self._poke()
        decoder = Decoder()
        async with stream:
            while data := await stream.receive_some(65536):
                for item in decoder.feed(data):
                    if isinstance(item, Violation):
                        self.violations.append(item.reason)
                        return
                    self.objects.append(item)
                self._poke()

    async def _stall(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        self._poke()
        async with stream:
            await trio.sleep_forever()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    @property
    def bodies(self) -> list[str]:
        return [o.get("Body") for o in self.objects]

    async def wait_for(self, predicate: Callable[[Sink], bool]) -> None:
        while not predicate(self):
            await self._changed.wait()


async def sink(nursery: trio.Nursery, **kw: Any) -> Sink:
    s = Sink()
    await nursery.start(lambda task_status: s.serve(task_status=task_status, **kw))
    return s


async def origin(node: Node) -> trio.SocketStream:
    """A raw incoming connection to the node, as a foreign peer's outgoing link."""
    host, port = node.addr.rsplit(":", 1)
    return await trio.open_tcp_stream(host, int(port))


async def send(stream: trio.SocketStream, *objects: dict) -> None:
    await stream.send_all(b"".join(encode_object(o) for o in objects))


def dumps(obj: dict) -> bytes:
    return json.dumps(obj).encode()


async def eof(stream: trio.SocketStream) -> bool:
    """Whether the next thing the node writes on an incoming connection, after its
    capability banner (``engine/hello.py``), is the end of it."""
    data = await stream.receive_some(1024)
    if data.startswith(banner()):
        data = data[len(banner()) :] or await stream.receive_some(1024)
    return data == b""
