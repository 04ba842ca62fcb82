"""A small whispernet peer with at most one deliberate bug, to prove conformance cases can fail.

Usage: python fakepeer.py --port N [--discovery-port N] [--bug NAME ...] [--go]

Without --bug it follows PROTOCOL.md closely enough to pass every conformance case (a test
checks that), so when a case fails against ``--bug X`` it fails because of X.  It reuses
whisper's codec and message rules; each bug is a small, named departure (see ``BUGS``).
It listens on 127.0.0.1 only (TCP, and UDP for discovery with --discovery-port), never sends
a datagram, dials only 127.0.0.1 when it hears one, and ignores stdin.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import json
import os
import re
import socket
import sys
import time
import unicodedata
from collections.abc import Callable
from typing import Any

import trio

from whisper import codec
from whisper.discovery_policy import MAX_DATAGRAM, parse_datagram
from whisper.flood import Connection, FloodControl, FloodCut
from whisper.freshness import check_fresh
from whisper.identity import dm, signing
from whisper.ids import HASH_PREFIX, hashed_id
from whisper.message import KNOWN_KEYS, InvalidMessage, Message, NotChat
from whisper.peers import PeerTable
from whisper.ratelimit import TokenBucket

BUGS = {
    "relay-first-only": "relays each message only to the first peer it dialled",
    "no-dedupe": "never remembers message IDs",
    "newline-framed": "expects one object per line and skips lines that do not parse",
    "chunk-parse": "parses each received chunk on its own and drops the connection if cut",
    "no-dialback": "never dials the Addr of a message",
    "exit-on-malformed": "exits on malformed input instead of dropping the connection",
    "crash-no-body": "exits, like the Go peer's panic, on a payload without Body",
    "relay-no-body": "relays payloads without Body",
    "strict-keys": "drops messages with keys it does not know",
    "crash-on-refused-dial": "dials inline before reading on, and dies if the dial fails",
    "hash-case-sensitive": "compares hashed IDs case-sensitively",
    "no-hash-check": "relays hashed IDs without checking them",
    "seen-before-check": "marks an ID seen before checking its hash",
    "hash-unknown-strict": "drops IDs of hash functions it does not know",
    "json-surrogates": "reads with Python's json, which keeps an escaped lone surrogate as is",
    "seconds-as-ms": "reads every Timestamp as milliseconds",
    "no-freshness": "accepts any Timestamp",
    "require-timestamp": "drops messages without a Timestamp",
    "no-size-limit": "accepts messages of any size",
    "no-depth-limit": "accepts any nesting depth",
    "blocking-relay": "writes to each peer in turn, waiting for each write to finish",
    "go-reencode": "relays its own struct (unknown keys stripped, missing ones added) to all",
    "strip-file-keys": "relays file messages without FileName, FileType and FileContents",
    "crash-on-file": "exits on a message with FileContents",
    "drop-bad-file": "drops file messages whose file keys are not valid",
    "crash-on-file-name": "exits on a FileName with a path separator",
    "normalize-whole-name": "normalises a FileName to NFC whole (quadratic in combining marks)",
    "no-backlog": "replays nothing to a peer it dials",
    "backlog-newest-first": "replays its backlog newest first",
    "backlog-unmarked": 'replays without "History": true',
    "backlog-to-author": "replays to a peer its own messages too",
    "backlog-stale": "replays messages however old",
    "no-flood-control": "relays every new message: no rate limits, never cuts a connection",
    "never-cut": "limits each origin's messages but never closes a connection",
    "block-ip": "after cutting a flooder, refuses every connection from its IP, loopback too",
    "shared-origin": "limits each origin in one bucket that every connection spends",
    "blame-relays": "limits each origin in one bucket all connections share, blaming any over it",
    "blacklist-claimed": "blacklists the Addr that a connection's messages over its limit claim",
    "no-relay-pace": "sends each peer everything it relays, however fast its connections bring it",
    "no-discovery": "reads each datagram into a zero-length buffer (the Go peer's bug): hears none",
    "crash-on-garbage-datagram": "exits on a datagram that is not a bare IP:PORT",
    "dial-garbage": "dials any 127.0.0.1:PORT found in a datagram, junk around it and all",
    "dial-self": "dials its own address when a datagram announces it",
    "refuse-when-full": "refuses new connections once its 128 slots are taken, never evicting",
    "no-sig-check": "relays signed messages without checking their signature",
    "strip-identity": "relays signed messages without Key and Sig",
    "drop-dm": "drops direct messages it cannot open",
    "no-banner": "writes no capability banner on the connections it accepts (speaks nothing)",
    "no-hello": "never writes a hello on a link, banner or not",
    "no-hello-dialback": "ignores a hello: dials only the Addr of chat messages",
    "hello-to-all": "writes a hello on every link without waiting for a banner",
    "no-join-answer": "ignores a routing join: writes no accept",
    "ihave-to-legacy": "announces messages with ihave on every link, banner or not",
    "no-graft": "ignores a graft: a lazy neighbour never gets the message it asks for",
    "prune-all": "takes a prune naming one author (Root) for a prune of every author's messages",
    "graft-held": "grafts every ID a neighbour announces, those of messages it holds too",
    "no-presence-relay": "does not relay presence announcements",
    "presence-to-all": "relays presence announcements to every link, banner or not",
    "no-reverse": 'ignores "Reverse": true: dials the Addr of the hello, never writes back',
    "reverse-unasked": "makes the connection of every hello naming twoway two-way, asked or not",
    "reverse-truthy": 'takes any Reverse but false, null, 0 and "" for a yes ("true", 1)',
}
# Documented Go traits: crashes on a missing Body, no hashed IDs, no expiry, no size limit;
# encoding/json's depth limit is 10,000; it re-encodes and relays to the message's own Addr.
# No backlog either (it has no replay), and no flood control.  Its discovery listener reads
# into a zero-length buffer, so it never learns an address from a datagram.  It accepts every
# connection (a goroutine each): no slots to run out of.  It checks no signature (§7.5).
# It writes nothing on a connection it accepts: no banner, and no two-way links (§7.12).
GO = (
    "crash-no-body",
    "no-hash-check",
    "no-freshness",
    "no-size-limit",
    "go-reencode",
    "no-backlog",
    "no-flood-control",
    "no-discovery",
    "no-sig-check",
    "no-banner",
    "no-hello",
    "no-reverse",
)
GO_DEPTH = 10_000
GO_FIELDS = ("ID", "Addr", "Body", "omitempty", "Timestamp")
QUEUE = 256  # messages per link; when full, drop for that link only (§5.3)
BACKLOG = 50  # messages replayed first on each link (§7.3)
REPLAY_MAX_AGE = 480.0
FILE_KEYS = ("FileName", "FileType", "FileContents")
BANNER = b'{"Speaks":["hello","presence","routing","twoway"]}\n'  # §7.10, §7.8, §7.12
ROUTING = "routing"
TWOWAY = "twoway"
CACHE = 1024  # messages kept for grafts (§7.9)
LENIENT_ADDR = re.compile(r"127\.0\.0\.1:(\d+)")  # dial-garbage: \d is any Unicode digit


class FakePeer:
    def __init__(self, port: int, bugs: set[str], go: bool = False, udp: int | None = None) -> None:
        self.port = port
        self.udp = udp
        self.bugs = bugs
        self.go = go
        self.seen: set[str] = set()
        self.links: dict[str, trio.MemorySendChannel[bytes]] = {}  # addr -> queue
        self.streams: dict[str, trio.SocketStream] = {}  # for blocking-relay
        # (number, Addr, Timestamp in ms, object) of the last BACKLOG messages accepted
        self.backlog: collections.deque[tuple[int, str, int, dict[str, Any]]]
        self.backlog = collections.deque(maxlen=BACKLOG)
        self.accepted = 0
        self.flood = None if "no-flood-control" in bugs else FloodControl()
        self.slots = None if go else PeerTable(f"127.0.0.1:{port}")  # 128 incoming (§5.4)
        self.shared: dict[str, TokenBucket] = {}  # shared-origin: one bucket per Addr
        self.claims: dict[int, int] = {}  # blacklist-claimed: drops per connection
        self.banned: set[str] = set()  # blacklist-claimed: Addrs it will not dial
        self.budgets: dict[str, TokenBucket] = {}  # per link: what a receiver accepts (§7.4)
        self.caps: dict[str, set[str]] = {}  # per link: what its peer's banner names (§7.10)
        # extension 14, just enough: joiners become neighbours, pruned ones lazy (§7.8, §7.9)
        self.joined: set[str] = set()  # joiners still owed an accept (their banner awaited)
        self.lazy: set[str] = set()
        self.lazy_roots: dict[str, set[str]] = {}  # neighbour -> authors pruned (Root)
        self.cache: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self.back: dict[str, trio.SocketStream] = {}  # two-way links: Addr -> its connection
        self.nursery: trio.Nursery

    async def run(self) -> None:
        listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            if self.udp is not None:
                nursery.start_soon(self.hear_datagrams)
            await trio.serve_listeners(self.serve, listeners)

    # -- reading --------------------------------------------------------------------

    async def serve(self, stream: trio.SocketStream) -> None:
        async with stream:
            conn = self.open(stream)
            if conn is False:
                return  # refused: blacklisted
            ip, port = stream.socket.getpeername()[:2]
            remote = f"{ip}:{port}"
            if "no-banner" not in self.bugs:
                with contextlib.suppress(trio.BrokenResourceError):
                    await stream.send_all(BANNER)
            with trio.CancelScope() as scope:
                if not self.take_slot(remote, scope.cancel):
                    return
                try:
                    await self.read(stream, conn, remote)
                finally:
                    if self.slots is not None:
                        self.slots.closed(remote)
                    self.unlink_back(stream)

    def take_slot(self, remote: str, close: Callable[[], None]) -> bool:
        """A slot for a new connection (§5.4): one that gives way is closed, unless a bug
        says otherwise."""
        slots = self.slots
        if slots is None:
            return True
        if "refuse-when-full" in self.bugs and len(slots.incoming) >= slots.max_incoming:
            return False
        admission = slots.admit(remote, trio.current_time(), close)
        if admission.replaces is not None and admission.replaces.close is not None:
            admission.replaces.close()
        return bool(admission)

    async def read(self, stream: trio.SocketStream, conn: Connection | None, remote: str) -> None:
        if "newline-framed" in self.bugs or "json-surrogates" in self.bugs:
            await self.read_lines(stream)  # the suite writes one object a line
        elif "chunk-parse" in self.bugs:
            await self.read_chunks(stream)
        else:
            with contextlib.suppress(FloodCut):  # flood control (§7.4) closes it
                await self.read_stream(stream, conn, remote)

    def open(self, stream: trio.SocketStream) -> Connection | bool | None:
        """Flood-control state for a new connection; False to refuse it (§7.4)."""
        if self.flood is None:
            return None
        ip, port = stream.socket.getpeername()[:2]
        now = trio.current_time()
        if "block-ip" in self.bugs and self.flood.blacklist.host(ip, now):
            return False  # the bug: loopback is shared by every peer on this machine
        return self.flood.open(f"{ip}:{port}", now, f"127.0.0.1:{self.port}") or False

    async def read_stream(
        self, stream: trio.SocketStream, conn: Connection | None, remote: str
    ) -> None:
        limits: dict[str, int] = {}
        if "no-size-limit" in self.bugs:
            limits["max_size"] = 1 << 40
        if "no-depth-limit" in self.bugs or self.go:
            limits["max_depth"] = GO_DEPTH if self.go else 1 << 20
        decoder = codec.Decoder(**limits)
        while True:
            data = await _receive(stream)
            for item in decoder.feed(data) if data else decoder.feed_eof():
                if isinstance(item, codec.Violation):
                    if "exit-on-malformed" in self.bugs:
                        os._exit(3)
                    return
                await self.handle(item, conn, remote, stream)
            if not data:
                return

    async def read_lines(self, stream: trio.SocketStream) -> None:
        buffer = b""
        while data := await _receive(stream):
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    await self.handle(obj)

    async def read_chunks(self, stream: trio.SocketStream) -> None:
        while data := await _receive(stream):
            for item in codec.decode_all(data):
                if isinstance(item, codec.Violation):
                    return
                await self.handle(item)

    # -- the pipeline (PROTOCOL.md §5.1), with the bug -------------------------------

    async def handle(
        self,
        obj: dict[str, Any],
        conn: Connection | None = None,
        remote: str = "",
        stream: trio.SocketStream | None = None,
    ) -> None:
        bugs = self.bugs
        if conn is not None and not self.flood_check(conn.count, trio.current_time()):
            return  # every object counts (§7.4)
        try:
            message = Message.from_wire(obj)
        except NotChat:
            if "crash-no-body" in bugs:
                os._exit(2)
            await self.extension(obj, stream)
            if "relay-no-body" in bugs and isinstance(obj.get("ID"), str):
                await self.forward(codec.encode_object(obj), obj.get("Addr"))
            return
        except InvalidMessage:
            return
        if "strict-keys" in bugs and set(obj) - KNOWN_KEYS:
            return
        if not self.file_ok(obj):
            return
        if message.id in self.seen:
            return
        if "seen-before-check" in bugs:
            self.seen.add(message.id)
        if not self.id_ok(message):
            return
        if not self.signature_ok(obj):
            return
        if not self.fresh(message):
            return
        if conn is not None and not self.admit(conn, message.addr):
            return
        if "no-dedupe" not in bugs:
            self.seen.add(message.id)
        if self.slots is not None and remote:
            self.slots.delivered(remote, None, trio.current_time())
        if message.timestamp_ms is not None:
            self.backlog.append((self.accepted, message.addr, message.timestamp_ms, obj))
            self.accepted += 1
        if "strip-file-keys" in bugs:
            obj = {k: v for k, v in obj.items() if k not in FILE_KEYS}
        if "strip-identity" in bugs:
            obj = {k: v for k, v in obj.items() if k not in (signing.KEY, signing.SIG)}
        if "go-reencode" in bugs:
            struct = {k: obj.get(k, 0 if k == "Timestamp" else "") for k in GO_FIELDS}
            await self.forward(codec.encode_object(struct), None)
        else:
            light = conn is None or conn.light(trio.current_time())
            await self.forward(codec.encode_object(obj), message.addr, light, mid=message.id)
        if message.addr not in self.links and message.addr not in self.streams:
            await self.dial(message.addr)

    async def extension(self, obj: dict[str, Any], stream: trio.SocketStream | None) -> None:
        """A hello is dialled back, or its connection made two-way if it asks; a presence
        announcement flooded (§7.10, §7.11, §7.12)."""
        addr = obj.get("Addr")
        if not isinstance(addr, str) or not re.fullmatch(r"127\.0\.0\.1:\d{1,5}", addr):
            return
        first = stream is not None and stream not in self.back.values()
        if obj.get("Ctl") == "hello" and first and addr not in self.links and self.reverse(obj):
            assert stream is not None
            self.adopt(addr, stream, obj.get("Speaks"))
            return
        hello = obj.get("Ctl") == "hello" and "no-hello-dialback" not in self.bugs
        if hello and addr not in self.links:
            await self.dial(addr)
        if obj.get("Ctl") in ("join", "prune", "graft"):
            self.routing(obj["Ctl"], addr, obj.get("IDs"), obj.get("Root"))
            return
        if obj.get("Ctl") == "ihave" and isinstance(obj.get("IDs"), list):
            self.graft(addr, [i for i in obj["IDs"] if isinstance(i, str)])
            return
        mid = obj.get("ID")
        if obj.get("Presence") in ("here", "gone") and isinstance(mid, str) and mid:
            if mid in self.seen or "no-presence-relay" in self.bugs:
                return
            self.seen.add(mid)
            needs = None if "presence-to-all" in self.bugs else "presence"
            await self.forward(codec.encode_object(obj), addr, needs=needs)

    def routing(self, kind: str, addr: str, ids: object, root: object = None) -> None:
        """A join is answered ``accept`` (once the joiner's banner names routing), a prune
        makes its writer lazy (for the messages of its ``Root`` only, if it names one), a
        graft eager again and pushes it what it names."""
        if kind == "join" and "no-join-answer" not in self.bugs:
            self.joined.add(addr)
            self.lazy.discard(addr)
            self.lazy_roots.pop(addr, None)
            self.accept_joiners()
        elif kind == "prune" and isinstance(root, str) and "prune-all" not in self.bugs:
            self.lazy_roots.setdefault(addr, set()).add(root)
        elif kind == "prune":
            self.lazy.add(addr)
        elif kind == "graft" and "no-graft" not in self.bugs and isinstance(ids, list):
            self.lazy.discard(addr)
            self.lazy_roots.pop(addr, None)
            link = self.links.get(addr)
            for data in [self.cache.get(i) for i in ids if isinstance(i, str)]:
                if data is not None and link is not None:
                    with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                        link.send_nowait(data)

    def graft(self, addr: str, ids: list[str]) -> None:
        """Announced IDs it has not received are grafted from the announcer at once (§7.9
        allows 0.25 s; a fake need not wait)."""
        missing = ids if "graft-held" in self.bugs else [i for i in ids if i not in self.seen]
        link = self.links.get(addr)
        if missing and link is not None and ROUTING in self.caps.get(addr, ()):
            me = f"127.0.0.1:{self.port}"
            graft = codec.encode_object({"Ctl": "graft", "Addr": me, "IDs": missing})
            with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                link.send_nowait(graft)

    def reverse(self, hello: dict[str, Any]) -> bool:
        """Whether a hello asks for its connection to be made two-way (§7.12)."""
        bugs, value = self.bugs, hello.get("Reverse")
        if "no-reverse" in bugs:
            return False
        if "reverse-unasked" in bugs:
            speaks = hello.get("Speaks")
            return isinstance(speaks, list) and TWOWAY in speaks
        return bool(value) if "reverse-truthy" in bugs else value is True

    def adopt(self, addr: str, stream: trio.SocketStream, speaks: object) -> None:
        """The connection becomes our link to ``addr``, written to as a dialled one is: the
        replay, our hello if its hello names ``hello``, what we relay (§7.12)."""
        queue = self.new_link(addr)
        self.back[addr] = stream
        self.caps[addr] = (
            {c for c in speaks if isinstance(c, str)} if isinstance(speaks, list) else set()
        )
        if "hello" in self.caps[addr] and "no-hello" not in self.bugs:
            self.links[addr].send_nowait(self.hello())
        self.nursery.start_soon(self.write_back, stream, queue, self.replay(addr, self.accepted))

    async def write_back(
        self, stream: trio.SocketStream, queue: trio.MemoryReceiveChannel[bytes], replay: bytes
    ) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self.write_link(stream, queue, replay)

    def unlink_back(self, stream: trio.SocketStream) -> None:
        """A two-way link ends with its connection (never redialled)."""
        for addr in [a for a, s in self.back.items() if s is stream]:
            del self.back[addr]
            self.links.pop(addr).close()
            self.budgets.pop(addr, None)
            self.caps.pop(addr, None)

    def accept_joiners(self) -> None:
        for addr in [a for a in self.joined if ROUTING in self.caps.get(a, ())]:
            self.joined.discard(addr)
            accept = {"Ctl": "accept", "Addr": f"127.0.0.1:{self.port}"}
            with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError, KeyError):
                self.links[addr].send_nowait(codec.encode_object(accept))

    def file_ok(self, obj: dict[str, Any]) -> bool:
        """Files are relayed like any message, unless a bug says otherwise."""
        name, mime, contents = (obj.get(k) for k in FILE_KEYS)
        if "crash-on-file" in self.bugs and contents is not None:
            os._exit(4)
        if "crash-on-file-name" in self.bugs and isinstance(name, str) and "/" in name:
            os._exit(5)
        if "normalize-whole-name" in self.bugs and isinstance(name, str):
            unicodedata.normalize("NFC", name)  # the bug: on the event loop, however long
        if "drop-bad-file" in self.bugs and any(k in obj for k in FILE_KEYS):
            try:
                base64.b64decode(contents, validate=True)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return False
            return isinstance(mime, str) and isinstance(name, str) and "/" not in name
        return True

    def replay(self, addr: str, before: int) -> bytes:
        """The backlog for a peer just dialled (§7.3): what came before its link, which
        holds what came after; as the bugs allow."""
        bugs = self.bugs
        if "no-backlog" in bugs:
            return b""
        now_ms = time.time() * 1000
        entries = [
            (ts, obj)
            for number, author, ts, obj in self.backlog
            if number < before
            and ("backlog-to-author" in bugs or author != addr)
            and ("backlog-stale" in bugs or now_ms - ts <= REPLAY_MAX_AGE * 1000)
        ]
        entries.sort(key=lambda e: e[0], reverse="backlog-newest-first" in bugs)
        mark = {} if "backlog-unmarked" in bugs else {"History": True}
        return b"".join(codec.encode_object({**obj, **mark}) for _, obj in entries)

    def flood_check(self, check: Any, *args: Any) -> bool:
        """Flood control (§7.4): False drops the message; FloodCut closes the connection."""
        try:
            return check(*args)
        except FloodCut:
            if "never-cut" in self.bugs:
                return False
            raise

    def admit(self, conn: Connection, addr: str) -> bool:
        return self.flood_check(self._admit, conn, addr)

    def _admit(self, conn: Connection, addr: str) -> bool:
        now = trio.current_time()
        if self.bugs & {"shared-origin", "blame-relays"}:  # the bug: anyone can spend it
            bucket = self.shared.setdefault(addr, TokenBucket(20.0, 500.0, now))
            if not bucket.take(now):
                if "blame-relays" in self.bugs:
                    conn.penalise(now, "messages over their origin's limit")
                return False
        if conn.admit(addr, now):
            return True
        drops = self.claims[id(conn)] = self.claims.get(id(conn), 0) + 1
        if "blacklist-claimed" in self.bugs and drops > 100 and addr not in self.banned:
            self.banned.add(addr)  # the bug: the Addr was only claimed
            if addr in self.links:
                self.links.pop(addr).close()
        return False

    def id_ok(self, message: Message) -> bool:
        if "no-hash-check" in self.bugs or not message.id.startswith("hash:"):
            return True
        if not message.id.startswith(HASH_PREFIX):
            return "hash-unknown-strict" not in self.bugs
        expected = hashed_id(message.addr, message.body, message.timestamp)
        got = message.id if "hash-case-sensitive" in self.bugs else message.id.lower()
        return got == expected

    def signature_ok(self, obj: dict[str, Any]) -> bool:
        """Signatures (§7.5) are checked before the ID is marked seen; a DM (§7.6) is relayed
        whoever it is for (this fake has no key to open one with)."""
        if "drop-dm" in self.bugs and dm.is_dm(obj):
            return False
        if "no-sig-check" in self.bugs:
            return True
        return signing.verify(obj).status is not signing.SigStatus.INVALID

    def fresh(self, message: Message) -> bool:
        if not message.timestamp:
            return "require-timestamp" not in self.bugs
        if "no-freshness" in self.bugs:
            return True
        ms = message.timestamp if "seconds-as-ms" in self.bugs else message.timestamp_ms
        return check_fresh(ms, now=time.time(), memory=600.0) is None

    # -- discovery (PROTOCOL.md §7.1), with the bug -------------------------------------

    async def hear_datagrams(self) -> None:
        assert self.udp is not None
        with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            await sock.bind(("127.0.0.1", self.udp))
            size = 0 if "no-discovery" in self.bugs else 65_535
            while True:
                data, _ = await sock.recvfrom(size)
                await self.heard(data)

    async def heard(self, data: bytes) -> None:
        """Dial a loopback address a datagram announces, unless we have a link to it."""
        if "dial-garbage" in self.bugs:
            found = LENIENT_ADDR.search(data.decode("utf-8", "replace"))
            addr = found and f"127.0.0.1:{int(found[1]) % 65536}"  # and keeps 16 bits
        else:
            endpoint = parse_datagram(data) if len(data) <= MAX_DATAGRAM else None
            addr = str(endpoint) if endpoint and endpoint.ip.is_loopback else None
        if not addr:
            if "crash-on-garbage-datagram" in self.bugs and "no-discovery" not in self.bugs:
                os._exit(6)
            return
        if addr not in self.links and addr not in self.streams:
            await self.dial(addr)

    # -- relaying and dialling ------------------------------------------------------

    async def forward(
        self,
        data: bytes,
        except_addr: object,
        light: bool = True,
        needs: str | None = None,
        mid: str | None = None,
    ) -> None:
        if "blocking-relay" in self.bugs:
            for addr, stream in list(self.streams.items()):
                if addr != except_addr:
                    try:
                        await stream.send_all(data)  # the bug: one slow peer blocks all
                    except trio.BrokenResourceError:
                        del self.streams[addr]
            return
        targets = [a for a in self.links if a != except_addr]
        if needs is not None:
            targets = [a for a in targets if needs in self.caps.get(a, ())]
        if "relay-first-only" in self.bugs:
            targets = targets[:1]
        now = trio.current_time()
        if mid is not None:  # a chat message: kept for grafts, announced to lazy neighbours
            self.cache[mid] = data
            while len(self.cache) > CACHE:
                self.cache.popitem(last=False)
            ihave = codec.encode_object(
                {"Ctl": "ihave", "Addr": f"127.0.0.1:{self.port}", "IDs": [mid]}
            )
            everyone = "ihave-to-legacy" in self.bugs
            author = json.loads(data).get("Addr") if self.lazy_roots else None
            lazy = {a for a in targets if a in self.lazy or author in self.lazy_roots.get(a, ())}
            for addr in [a for a in targets if a in lazy or everyone]:
                with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                    self.links[addr].send_nowait(ihave)
            targets = [a for a in targets if a not in lazy]
        for addr in targets:
            budget = self.budgets.get(addr)
            if budget is not None and not budget.take(now, light):
                continue  # more than a receiver accepts: dropped for this peer only
            with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                self.links[addr].send_nowait(data)  # when full: dropped for this peer only

    async def dial(self, addr: str) -> None:
        own = addr == f"127.0.0.1:{self.port}"
        if "no-dialback" in self.bugs or (own and "dial-self" not in self.bugs):
            return
        if self.flood is not None and self.flood.blocked(addr, trio.current_time()):
            return
        if addr in self.banned:
            return
        host, _, port = addr.rpartition(":")
        if "crash-on-refused-dial" in self.bugs:
            probe = await trio.open_tcp_stream(host, int(port))  # raises: the peer dies
            await probe.aclose()
        if "blocking-relay" in self.bugs:
            self.streams[addr] = await trio.open_tcp_stream(host, int(port))
            return
        # The replay is what was accepted before now: what comes later goes into the queue.
        queue = self.new_link(addr)
        self.nursery.start_soon(self.link, addr, host, int(port), queue, self.accepted)

    def new_link(self, addr: str) -> trio.MemoryReceiveChannel[bytes]:
        send, receive = trio.open_memory_channel[bytes](QUEUE)
        self.links[addr] = send
        if self.flood is not None and "no-relay-pace" not in self.bugs:
            self.budgets[addr] = self.flood.link_budget(trio.current_time())
        return receive

    async def link(
        self,
        addr: str,
        host: str,
        port: int,
        queue: trio.MemoryReceiveChannel[bytes],
        before: int,
    ) -> None:
        try:
            stream = await trio.open_tcp_stream(host, port)
            async with stream, trio.open_nursery() as nursery:
                nursery.start_soon(self.read_banner, addr, stream)
                if "hello-to-all" in self.bugs:
                    await stream.send_all(self.hello())
                await self.write_link(stream, queue, self.replay(addr, before))
                nursery.cancel_scope.cancel()
        except (OSError, trio.BrokenResourceError):
            pass
        finally:
            self.links.pop(addr, None)
            self.budgets.pop(addr, None)
            self.caps.pop(addr, None)

    async def write_link(
        self, stream: trio.SocketStream, queue: trio.MemoryReceiveChannel[bytes], replay: bytes
    ) -> None:
        async with queue:
            if replay:
                await stream.send_all(replay)
            async for data in queue:
                await stream.send_all(data)

    def hello(self) -> bytes:
        return codec.encode_object({"Ctl": "hello", "Addr": f"127.0.0.1:{self.port}"})

    async def read_banner(self, addr: str, stream: trio.SocketStream) -> None:
        """What the dialled peer speaks (§7.10): a hello goes into the link's queue once its
        banner names it.  Chat is not held back for it."""
        head = b""
        while b"\n" not in head and len(head) < 1024:
            data = await _receive(stream)
            if not data:
                return
            head += data
        try:
            speaks = json.loads(head.partition(b"\n")[0]).get("Speaks")
        except (ValueError, AttributeError):
            return
        if not isinstance(speaks, list):
            return
        self.caps[addr] = {c for c in speaks if isinstance(c, str)}
        self.accept_joiners()
        link = self.links.get(addr)
        if (
            "hello" in self.caps[addr]
            and link is not None
            and not self.bugs & {"no-hello", "hello-to-all"}
        ):
            with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                link.send_nowait(self.hello())
        await trio.sleep_forever()  # read nothing more: a dialler ignores the rest


async def _receive(stream: trio.SocketStream) -> bytes:
    try:
        return await stream.receive_some(65536)
    except trio.BrokenResourceError:
        return b""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--discovery-port", type=int, help="hear datagrams on this UDP port")
    parser.add_argument("--bug", choices=sorted(BUGS), action="append", default=[])
    parser.add_argument("--go", action="store_true", help="the Go reference peer's bugs")
    args = parser.parse_args()
    sys.setrecursionlimit(30_000)  # relaying deeply nested values re-encodes them
    bugs = set(args.bug) | (set(GO) if args.go else set())
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(FakePeer(args.port, bugs, args.go, args.discovery_port).run)


if __name__ == "__main__":
    main()
