"""The suite's fake peers: what the peer under test talks to, and all the suite observes.

Rules:
- A ``FakePeer`` listens on 127.0.0.1 (port chosen by the kernel; discovery cases may put
  it on the peer's own address, where §7.1 lets the peer dial it); its ``IP:PORT`` is the
  ``Addr`` of the messages it originates, so the peer under test dials it back (§5.1 step 8).
  It decodes whatever arrives on the connections it accepts, leniently (limits far above the
  protocol's, so that a peer that wrongly relays an oversized or deeply nested message is seen
  doing it), and records every object by ``ID``.
- A stalling fake (``stall=True``) has a tiny receive buffer and stops reading for good once
  its stop condition holds (the suite sets it to "a registration probe arrived"); it keeps
  the connection open and never closes it.
- A fake given a ``banner`` writes it first on every connection it accepts (§7.10).
- A ``Connection`` is one outgoing connection from a fake to the peer under test.  It writes
  bytes and watches the other direction: EOF or a reset is recorded as the peer closing it;
  the first ``HEAD_BYTES`` the peer writes back are kept (``head``: its banner, if any).
  Everything it writes back is also decoded, as whispernet JSON (leniently, as a fake
  does): the objects after a first ``{"Speaks": ...}`` object (the banner) are
  ``received`` (a two-way link writes there, §7.12); bytes that do not parse are ``garbage``.
  A write that fails because the peer closed the connection is not an error: it is recorded.
- Every observation (a connection accepted or closed, an object received) wakes the
  ``Observer``; the suite waits on predicates, never on sleeps.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import trio

from ..codec import Decoder, Violation

RECEIVE_BYTES = 64 * 1024
HEAD_BYTES = 1024  # what a connection keeps of what the peer writes back on it
STALL_RCVBUF = 4096
_LENIENT = {"max_size": 1 << 30, "max_depth": 1 << 20, "max_values": 1 << 30}


def encode(obj: dict[str, Any]) -> bytes:
    """Compact JSON (UTF-8, nothing escaped that need not be) and a newline."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


class Observer:
    """Wakes the waiting case whenever anything is observed; remembers the current step."""

    def __init__(self) -> None:
        self._changed = trio.Event()
        self.step = "starting"

    def notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def changed(self) -> None:
        await self._changed.wait()


class FakePeer:
    """A listener that the peer under test dials, recording every object it is sent."""

    def __init__(
        self,
        name: str,
        listener: trio.SocketListener,
        observer: Observer,
        *,
        stall: bool,
        banner: bytes = b"",
    ) -> None:
        self.name = name
        self.banner = banner  # written first on every connection it accepts (§7.10)
        self.listener = listener
        host, port = listener.socket.getsockname()[:2]
        self.addr = f"{host}:{port}"
        self.stall = stall
        self.stop_reading: Callable[[], bool] = lambda: False
        self.accepted = 0
        self.received: list[dict[str, Any]] = []
        self.by_id: dict[str, list[dict[str, Any]]] = {}
        self.garbage: str | None = None  # the peer under test sent us something malformed
        self._observer = observer

    @classmethod
    async def open(
        cls,
        name: str,
        observer: Observer,
        *,
        stall: bool = False,
        host: str = "127.0.0.1",
        banner: bytes = b"",
    ) -> FakePeer:
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if stall:  # inherited by accepted sockets: the peer's writes back up quickly
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STALL_RCVBUF)
        await sock.bind((host, 0))
        sock.listen(64)
        return cls(name, trio.SocketListener(sock), observer, stall=stall, banner=banner)

    # -- what cases ask -------------------------------------------------------------

    def got(self, message: dict[str, Any] | str) -> int:
        """How many times an object with this message's ID arrived."""
        key = message if isinstance(message, str) else message["ID"]
        return len(self.by_id.get(key, ()))

    def got_any(self, ids: list[str]) -> bool:
        return any(i in self.by_id for i in ids)

    def first(self, message: dict[str, Any]) -> dict[str, Any] | None:
        copies = self.by_id.get(message["ID"])
        return copies[0] if copies else None

    def summary(self) -> str:
        if not self.accepted:
            return f"{self.name} ({self.addr}) was never dialled"
        text = f"{self.name} was dialled and received {len(self.received)} objects"
        return text + (f", then malformed data ({self.garbage})" if self.garbage else "")

    # -- tasks ----------------------------------------------------------------------

    async def serve(self) -> None:
        async with self.listener, trio.open_nursery() as nursery:
            while True:
                try:
                    stream = await self.listener.accept()
                except OSError as exc:  # e.g. out of file descriptors: stop accepting
                    self.garbage = f"accept failed: {exc}"
                    return
                self.accepted += 1
                self._observer.notify()
                nursery.start_soon(self._read, stream)

    async def _read(self, stream: trio.SocketStream) -> None:
        decoder = Decoder(**_LENIENT)
        async with stream:
            if self.banner:
                try:
                    await stream.send_all(self.banner)
                except trio.BrokenResourceError:
                    return
            while True:
                if self.stall and self.stop_reading():
                    await trio.sleep_forever()  # accept, never read again, never close
                try:
                    data = await stream.receive_some(RECEIVE_BYTES)
                except trio.BrokenResourceError:
                    return
                for item in decoder.feed(data) if data else decoder.feed_eof():
                    if type(item) is Violation:
                        self.garbage = item.reason
                    else:
                        self._record(item)
                self._observer.notify()
                if not data or self.garbage:
                    return

    def _record(self, obj: dict[str, Any]) -> None:
        self.received.append(obj)
        key = obj.get("ID")
        if isinstance(key, str):
            self.by_id.setdefault(key, []).append(obj)


class Connection:
    """An outgoing connection from a fake peer to the peer under test."""

    def __init__(self, name: str, stream: trio.SocketStream, observer: Observer) -> None:
        self.name = name
        self.stream = stream
        self.closed: str | None = None  # how the peer closed it, once it has
        self.bytes_sent = 0
        self.head = b""  # the first HEAD_BYTES the peer wrote back (a banner, §7.10)
        self.received: list[dict[str, Any]] = []  # objects it wrote after its banner
        self.garbage: str | None = None  # what it wrote back did not parse
        self._decoder = Decoder(**_LENIENT)
        self._objects = 0
        self._observer = observer

    async def send(self, data: bytes) -> bool:
        """Write bytes; False (and ``closed`` set) if the peer has closed the connection."""
        if self.closed:
            return False
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._mark_closed(f"reset by the peer while we were writing{_why(exc)}")
            return False
        self.bytes_sent += len(data)
        return True

    async def send_obj(self, *objects: dict[str, Any]) -> bool:
        return await self.send(b"".join(encode(obj) for obj in objects))

    async def send_paced(self, data: bytes, sizes: list[int], pause: float) -> bool:
        """Write ``data`` in pieces of the given sizes, pausing between them so that each
        piece reaches the peer in its own TCP segment (TCP_NODELAY is on)."""
        at = 0
        for size in sizes:
            if not await self.send(data[at : at + size]):
                return False
            at += size
            await trio.sleep(pause)
        return await self.send(data[at:]) if at < len(data) else True

    async def watch(self) -> None:
        """Read (and discard) the other direction until the peer closes it."""
        async with self.stream:
            while not self.closed:
                try:
                    data = await self.stream.receive_some(RECEIVE_BYTES)
                except trio.BrokenResourceError as exc:
                    self._mark_closed(f"reset by the peer{_why(exc)}")
                    return
                except trio.ClosedResourceError:
                    return
                if not data:
                    self._mark_closed("closed by the peer (EOF)")
                    continue
                if len(self.head) < HEAD_BYTES:
                    self.head += data[: HEAD_BYTES - len(self.head)]
                if self.garbage is None:
                    self._decode(data)
                self._observer.notify()

    def _decode(self, data: bytes) -> None:
        for item in self._decoder.feed(data):
            if type(item) is Violation:
                self.garbage = item.reason
                return
            self._objects += 1
            if self._objects > 1 or "Speaks" not in item or "Ctl" in item:  # no banner
                self.received.append(item)

    def _mark_closed(self, how: str) -> None:
        if not self.closed:
            self.closed = how
            self._observer.notify()


def _why(exc: BaseException) -> str:
    """`` (reason)`` unless the reason is the usual one for a reset."""
    cause = exc.__cause__ or exc
    if isinstance(cause, (ConnectionResetError, BrokenPipeError)):
        return ""
    return f" ({getattr(cause, 'strerror', None) or cause or type(cause).__name__})"
