"""Level ``hello``: the capability banner, the hello on connect, presence (PROTOCOL.md §7.10,
§7.11).

Rules for every case here:
- The suite never writes a payload without ``Body`` to a peer that has not written it a
  banner naming the capability (§7.10): the Go peer crashes on one.  A case that needs one
  first connects and reads the banner (``BANNER_WAIT`` at most); a peer that writes none
  FAILS it, saying it does not speak §7.10, and is sent nothing that could crash it.
- Fakes that speak the extension (*speakers*) write ``BANNER`` on every connection they
  accept; the others (*plain* sinks) write nothing, as the Go peer does.
- The banner is parsed here, not with whisper's code: the first line, as JSON.
"""

from __future__ import annotations

import json
from typing import Any

import trio

from ..context import CaseContext, CaseFailed, random_id
from ..fakes import Connection, FakePeer
from ..registry import case

BANNER = b'{"Speaks":["hello","presence"]}\n'
BANNER_WAIT = 2.0  # seconds a peer has to write its banner on a connection it accepted


def _caps(head: bytes) -> set[str] | None:
    line, newline, _ = head.partition(b"\n")
    if not newline:
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    speaks = obj.get("Speaks") if isinstance(obj, dict) else None
    return {c for c in speaks if isinstance(c, str)} if isinstance(speaks, list) else None


async def _banner(ctx: CaseContext) -> tuple[Connection, set[str] | None, bytes]:
    conn = await ctx.connect("banner reader")
    with trio.move_on_after(BANNER_WAIT):
        await ctx.until(
            lambda: b"\n" in conn.head or conn.closed is not None, "a capability banner"
        )
    return conn, _caps(conn.head), conn.head


async def _speaking(ctx: CaseContext, capability: str) -> Connection:
    """A connection to the peer, which has said it speaks ``capability``; else FAIL."""
    conn, caps, head = await _banner(ctx)
    if caps is None or capability not in caps:
        what = f"wrote {head[:80]!r}" if head else f"wrote nothing within {BANNER_WAIT:.0f}s"
        raise CaseFailed(
            f"no capability banner naming {capability!r} on a connection it accepted ({what}): "
            "it does not speak §7.10, so it was sent no payload without Body"
        )
    return conn


def _bodyless(fake: FakePeer) -> list[dict[str, Any]]:
    return [o for o in fake.received if not isinstance(o.get("Body"), str) or not o["Body"]]


def _hellos(fake: FakePeer, addr: str) -> list[dict[str, Any]]:
    return [o for o in fake.received if o.get("Ctl") == "hello" and o.get("Addr") == addr]


def _peer_addr(ctx: CaseContext) -> str:
    return f"{ctx.peer.host}:{ctx.peer.port}"


@case("hello", "banner", "§7.10", 'writes {"Speaks": [...]} naming hello first on a connection')
async def banner(ctx: CaseContext) -> str:
    conn = await _speaking(ctx, "hello")
    line = conn.head.partition(b"\n")[0].decode(errors="replace")
    return f"wrote the banner {line[:80]}"


@case(
    "hello",
    "hello-dial-back",
    "§7.10",
    "dials the Addr of a hello at once and relays the next message on that connection",
)
async def hello_dial_back(ctx: CaseContext) -> str:
    conn = await _speaking(ctx, "hello")
    newcomer = await ctx.fake("newcomer")
    await conn.send_obj({"Ctl": "hello", "Addr": newcomer.addr, "Nick": "newcomer"})
    await ctx.until(
        lambda: newcomer.accepted > 0, f"a connection to the newcomer {newcomer.addr} (its hello)"
    )
    after = ctx.message("hello: a message after the dial-back")
    await conn.send_obj(after)
    await ctx.until(lambda: bool(newcomer.got(after)), "the next message at the newcomer")
    return "dialled the newcomer on its hello alone and relayed to it"


@case(
    "hello",
    "hello-on-connect",
    "§7.10",
    "writes a hello with its own Addr on a link to a peer whose banner names hello",
)
async def hello_on_connect(ctx: CaseContext) -> str:
    await _speaking(ctx, "hello")
    speaker = await ctx.fake("speaker", banner=BANNER)
    await ctx.register(speaker)
    addr = _peer_addr(ctx)
    await ctx.until(lambda: bool(_hellos(speaker, addr)), f"a hello with Addr {addr}")
    return f"wrote the speaker a hello with Addr {addr}"


@case(
    "hello",
    "hello-not-to-legacy",
    "§7.10",
    "never writes a payload without Body to a peer that wrote no banner",
)
async def hello_not_to_legacy(ctx: CaseContext) -> str:
    conn, caps, _ = await _banner(ctx)
    speaks = caps is not None and "hello" in caps
    plain = await ctx.fake("plain sink")
    speaker = await ctx.fake("speaker", banner=BANNER)
    await ctx.register(plain, speaker)
    addr = _peer_addr(ctx)
    if speaks:  # it writes them: by now it would have written one to the plain sink too
        await ctx.until(lambda: bool(_hellos(speaker, addr)), "a hello at the speaker")
    await ctx.settle(conn, plain, "the registrations")
    if _bodyless(plain):
        raise CaseFailed(
            f"sent a peer that wrote no banner {len(_bodyless(plain))} payload(s) without "
            f"Body, e.g. {json.dumps(_bodyless(plain)[0])[:120]}: the Go peer crashes on one"
        )
    if not speaks:
        return "speaks no extension (no banner) and sent the plain sink only chat messages"
    return "sent the speaker a hello and the plain sink only chat messages"


@case(
    "hello",
    "presence-flood",
    "§7.11",
    "relays a presence announcement once to each peer whose banner names presence, and to no other",
)
async def presence_flood(ctx: CaseContext) -> str:
    conn = await _speaking(ctx, "presence")
    first = await ctx.fake("speaker1", banner=BANNER)
    second = await ctx.fake("speaker2", banner=BANNER)
    plain = await ctx.fake("plain sink")
    await ctx.register(first, second, plain)
    carol = await ctx.fake("carol")  # the announcement's Addr: never dialled for it
    announcement = {"Presence": "here", "ID": random_id(), "Addr": carol.addr, "Nick": "carol"}
    await conn.send_obj(announcement)
    again = await ctx.connect("a copy")
    await again.send_obj(announcement)
    await ctx.until(
        lambda: bool(first.got(announcement)) and bool(second.got(announcement)),
        "the announcement at both speakers",
    )
    await ctx.settle(conn, plain, "the announcement")
    await ctx.settle(again, plain, "its copy")
    if plain.got(announcement):
        raise CaseFailed("relayed the announcement to a peer that wrote no banner")
    copies = first.got(announcement) + second.got(announcement)
    if copies != 2:
        raise CaseFailed(f"the speakers received the announcement {copies} times, not once each")
    return "relayed it once to each speaker, not to the plain sink"
