"""Identities end to end (extension 13): three whisper processes over loopback TCP.

Alice and bob reach each other only through carol: alice closes the link her peer made to
bob's ``Addr`` (``/disconnect``), so her DM leaves on her one link, to carol.  A sink that
carol dials records every byte carol relays."""

from __future__ import annotations

import json
from pathlib import Path

import trio

from whisper.identity import Identity, short_fingerprint, sign

from .helpers import LOCAL, send, wire
from .proc import Whisper

TIMEOUT = 30
SECRET = "meet me at the north door"


class Sink:
    """A listener carol dials (its ``Addr`` is in a message she gets): what she relays."""

    def __init__(self) -> None:
        self.data = b""
        self.addr = ""
        self._changed = trio.Event()

    async def start(self, nursery: trio.Nursery) -> None:
        listeners = await trio.open_tcp_listeners(0, host=LOCAL)
        self.addr = f"{LOCAL}:{listeners[0].socket.getsockname()[1]}"
        await nursery.start(trio.serve_listeners, self._serve, listeners)

    async def _serve(self, stream: trio.SocketStream) -> None:
        async with stream:
            while data := await stream.receive_some(65536):
                self.data += data
                self._changed.set()
                self._changed = trio.Event()

    async def until(self, text: str) -> None:
        while text.encode() not in self.data:
            await self._changed.wait()


def peer(nick: str, key: Path, *flags: str) -> Whisper:
    return Whisper("-host", LOCAL, "-port", "0", "-nick", nick, "-identity", str(key), *flags)


async def dial(p: Whisper) -> trio.SocketStream:
    host, port = p.addr.rsplit(":", 1)
    return await trio.open_tcp_stream(host, int(port))


def json_lines(p: Whisper) -> dict[str, dict]:
    return {o["Body"]: o for o in map(json.loads, p.stdout)}


async def test_dm_impostor_and_channels_through_a_relay(nursery, tmp_path):
    with trio.fail_after(TIMEOUT):
        carol = await peer("carol", tmp_path / "carol.key", "-headless").start(nursery)
        sink = Sink()
        await sink.start(nursery)
        conn = await dial(carol)
        await send(conn, wire("the sink is here", addr=sink.addr))
        alice = peer("alice", tmp_path / "alice.key", "-json", "-peer", carol.addr)
        bob = peer("bob", tmp_path / "bob.key", "-json", "-peer", carol.addr)
        await alice.start(nursery)
        await bob.start(nursery)
        await carol.type("/join #room")

        # both speak (carol dials them back; alice pins bob's key); alice then drops the
        # link her peer made to bob's Addr
        await alice.type("alice here")
        await carol.wait_line("stdout", "alice here")
        await bob.type("bob here")
        await alice.wait_line("stdout", "bob here")
        assert json_lines(alice)["bob here"]["Verified"] is True
        await alice.type(f"/disconnect {bob.addr}")
        await alice.wait_line("stderr", f"disconnected from {bob.addr}")

        await alice.type(f"/msg bob {SECRET}", "after the dm")
        await bob.wait_line("stdout", "north door")
        await carol.wait_line("stdout", "after the dm")
        await sink.until("after the dm")
        dm = json_lines(bob)[SECRET]
        assert dm["Direct"] is True and dm["Verified"] is True and dm["Nick"] == "alice"
        assert "Sealed" not in dm
        assert not any("north door" in line for line in carol.stdout)  # not printed
        assert b"north door" not in sink.data  # nor on the wire she relays
        assert b'"Body":"[encrypted message]"' in sink.data and b'"Sealed":' in sink.data

        # someone else signs as alice: an impostor on both screens
        mallory = Identity.generate()
        forged = sign(mallory, wire("i am alice too", nick="alice"))
        for target in (bob, carol):
            conn = await dial(target)
            await send(conn, forged)
        await bob.wait_line("stdout", "i am alice too")
        line = await carol.wait_line("stdout", "i am alice too")
        short = short_fingerprint(mallory.public)
        assert line == f"[IMPOSTOR {short}] alice: i am alice too"
        impostor = json_lines(bob)["i am alice too"]
        assert impostor["Verified"] is False and impostor["Impostor"] == short

        # channels: relayed everywhere, shown where joined
        await alice.type("/join #room", "room talk", "/part", "main again")
        await bob.wait_line("stdout", "main again")
        await carol.wait_line("stdout", "main again")
        await sink.until("main again")
        assert "[#room] alice: room talk" in carol.stdout
        assert "alice: main again" in carol.stdout
        assert not any("room talk" in line for line in bob.stdout)
        assert "Channel" not in json_lines(bob)["main again"]
        assert b'"Body":"[#room] room talk"' in sink.data and b'"Channel":"#room"' in sink.data
        for p in (alice, bob, carol):
            await p.stop()
