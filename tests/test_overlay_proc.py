"""Overlay peers (``-routing overlay``) as real processes on loopback, alone and mixed with
flood peers (``-routing flood``, as older whisper) and the Go peer's stand-in."""

from __future__ import annotations

import re

import trio

from .gopeer import GoPeer
from .proc import Whisper

LOOPBACK = ["-host", "127.0.0.1", "-port", "0", "-headless", "-no-discovery", "-no-history"]
TIMEOUT = 40
#: A line may come in a replay (said before the link was up), or through the Go stand-in
#: (which strips signatures).
SHOWN = r"(\[history \S+\] )?(\[unsigned\] )?"


async def start(nursery, nick: str, routing: str, contact: str | None) -> Whisper:
    flags = [*LOOPBACK, "-routing", routing, "-nick", nick]
    if contact:
        flags += ["-peer", contact]
    return await Whisper(*flags).start(nursery)


async def everyone_hears_everyone(peers: list[Whisper], gopher: GoPeer | None = None) -> None:
    """Each says a line (the Go stand-in too); every other one shows it, once."""
    nicks = [re.search(r"-nick (\S+)", " ".join(p.args)).group(1) for p in peers]
    for nick, peer in zip(nicks, peers, strict=True):
        await peer.type(f"hello from {nick}")
    if gopher is not None:
        gopher.say("hello from gopher")
        nicks.append("gopher")
    for nick, peer in zip(nicks, peers, strict=False):
        for other in nicks:
            if other != nick:
                await peer.wait_line("stdout", rf"^{SHOWN}{other}: hello from {other}$")
    if gopher is not None:
        for nick in nicks[:-1]:
            await gopher.wait_for(f"{nick}: hello from {nick}")
    for peer in peers:
        shown = [line for line in peer.stdout if "hello from" in line]
        assert len(shown) == len(set(shown)) == len(nicks) - 1


async def settle(peers: list[Whisper]) -> None:
    """Until the last peer's link to its contact is up (messages said before the overlay
    has settled still arrive: the contact is pushed everything meanwhile, §7.9)."""
    await peers[-1].wait_line("stderr", "connected to")


async def test_overlay_peers_deliver_everything(nursery):
    with trio.fail_after(TIMEOUT):
        peers: list[Whisper] = []
        for i in range(5):
            contact = peers[i // 2].addr if peers else None
            peers.append(await start(nursery, f"p{i}", "overlay", contact))
        await settle(peers)
        await everyone_hears_everyone(peers)
        for peer in peers:
            await peer.type("/peers")
            await peer.type("/discover")
            await peer.wait_line("stderr", "exchanging peer addresses|no overlay neighbour")
        for peer in peers:
            assert await peer.stop() == 0
    assert not any("Traceback" in line for p in peers for line in p.stderr)


async def test_mixed_network_overlay_flood_and_go_delivers_everything(nursery):
    """The Go stand-in crashes on a payload without Body: it is never sent one."""
    with trio.fail_after(TIMEOUT):
        peers: list[Whisper] = []
        for i, routing in enumerate(["overlay", "overlay", "flood", "overlay", "flood"]):
            contact = peers[i - 1].addr if peers else None
            peers.append(await start(nursery, f"{routing[0]}{i}", routing, contact))
        gopher = GoPeer("gopher")
        await nursery.start(gopher.run, peers[0].addr)
        await settle(peers)
        await everyone_hears_everyone(peers, gopher)
        for peer in peers:
            assert await peer.stop() == 0
    assert not gopher.crashed
    assert not any("Traceback" in line for p in peers for line in p.stderr)
