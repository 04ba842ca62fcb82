"""Level ``routing``: scalable routing, extension 14 (PROTOCOL.md §7.8, §7.9).

Rules for every case here:
- The suite writes a routing control only to a peer whose banner names ``routing``
  (``hello._speaking``); one that names none FAILS, sent nothing that could crash it.
- The *joiner* is a fake that speaks ``routing`` (its banner names it).  It introduces
  itself on a connection of the suite's with a hello naming ``routing`` and its ``Addr``
  (§7.10), then writes ``join`` there; the peer must make it a neighbour: dial it (if it
  has not yet) and write it ``accept``.  The joiner then writes ``prune``, so that the peer
  announces messages to it (``ihave``) instead of pushing them; ``routing-prune-root``
  grafts it back and prunes one author's messages only (``Root``, a tree per author).
  ``routing-graft-missing`` announces to the peer, as the joiner, an ID it holds (a
  presence announcement it was sent, or a chat message if it speaks no presence) beside
  one it cannot have: it must graft the second from the joiner, never the first.
- A *plain* sink writes no banner, as the Go peer: it must get every message whole and never
  a payload without ``Body``.
"""

from __future__ import annotations

import json
from typing import Any

from ...ids import random_id
from ..context import CaseContext, CaseFailed
from ..fakes import Connection, FakePeer
from ..registry import case
from .hello import _bodyless, _caps, _peer_addr, _speaking

ROUTING = "routing"
PRESENCE = "presence"
BANNER = b'{"Speaks":["hello","presence","routing"]}\n'


def _controls(fake: FakePeer, kind: str, addr: str) -> list[dict[str, Any]]:
    return [o for o in fake.received if o.get("Ctl") == kind and o.get("Addr") == addr]


def _names(fake: FakePeer, kind: str, addr: str, msg_id: str) -> bool:
    """Whether ``fake`` got a ``kind`` control (ihave, graft) from ``addr`` naming ``msg_id``."""
    return any(
        isinstance(o.get("IDs"), list) and msg_id in o["IDs"] for o in _controls(fake, kind, addr)
    )


def _announced(fake: FakePeer, addr: str, message: dict[str, Any]) -> bool:
    return _names(fake, "ihave", addr, message["ID"])


async def _neighbour(ctx: CaseContext) -> tuple[Connection, FakePeer]:
    """The joiner, made a neighbour of the peer (its ``accept``), then pruned to lazy."""
    conn = await _speaking(ctx, ROUTING)
    joiner = await ctx.fake("joiner", banner=BANNER)
    hello = {"Ctl": "hello", "Addr": joiner.addr, "Nick": "", "Speaks": ["hello", ROUTING]}
    await conn.send_obj(hello, {"Ctl": "join", "Addr": joiner.addr})
    addr = _peer_addr(ctx)
    await ctx.until(
        lambda: bool(_controls(joiner, "accept", addr)),
        f"an accept with Addr {addr} at the joiner {joiner.addr} (it wrote join)",
    )
    await conn.send_obj({"Ctl": "prune", "Addr": joiner.addr})
    return conn, joiner


@case("routing", "routing-join", "§7.8", "answers a join: dials the joiner and writes it accept")
async def routing_join(ctx: CaseContext) -> str:
    _, joiner = await _neighbour(ctx)
    return f"dialled the joiner and wrote it accept ({joiner.accepted} connection(s))"


@case(
    "routing",
    "routing-legacy-eager",
    "§7.8, §7.9",
    "pushes every message whole to a peer without a banner, never a control, while it "
    "announces them to a lazy neighbour",
)
async def routing_legacy_eager(ctx: CaseContext) -> str:
    _, joiner = await _neighbour(ctx)
    plain = await ctx.fake("plain sink")
    await ctx.register(plain)
    message = ctx.message("routing: for everyone")
    origin = await ctx.connect()
    await origin.send_obj(message)
    addr = _peer_addr(ctx)
    await ctx.until(lambda: bool(plain.got(message)), "the message, whole, at the plain sink")
    await ctx.until(lambda: _announced(joiner, addr, message), "an ihave at the joiner")
    await ctx.settle(origin, plain, "the message")
    if _bodyless(plain):
        raise CaseFailed(
            f"sent a peer that wrote no banner {len(_bodyless(plain))} payload(s) without "
            f"Body, e.g. {json.dumps(_bodyless(plain)[0])[:120]}: the Go peer crashes on one"
        )
    return "pushed it whole to the plain sink, announced it to the lazy joiner"


@case(
    "routing",
    "routing-graft",
    "§7.9",
    "announces a message to a lazy neighbour with ihave, and pushes it whole on its graft",
)
async def routing_graft(ctx: CaseContext) -> str:
    conn, joiner = await _neighbour(ctx)
    message = ctx.message("routing: graft me")
    origin = await ctx.connect()
    await origin.send_obj(message)
    addr = _peer_addr(ctx)
    await ctx.until(
        lambda: _announced(joiner, addr, message), "an ihave naming the message at the joiner"
    )
    if joiner.got(message):
        raise CaseFailed("pushed the message whole to a neighbour that had written prune")
    await conn.send_obj({"Ctl": "graft", "Addr": joiner.addr, "IDs": [message["ID"]]})
    await ctx.until(lambda: bool(joiner.got(message)), "the message at the joiner (its graft)")
    return "announced it with ihave, and pushed it on the graft"


@case(
    "routing",
    "routing-prune-root",
    "§7.9",
    "after a prune naming one author (Root), announces that author's messages to the "
    "neighbour and still pushes another author's whole",
)
async def routing_prune_root(ctx: CaseContext) -> str:
    conn, joiner = await _neighbour(ctx)
    # a graft makes the joiner eager again in every tree; then it prunes one author's
    await conn.send_obj({"Ctl": "graft", "Addr": joiner.addr, "IDs": []})
    pruned_author, other_author = await ctx.fake("author a"), await ctx.fake("author b")
    await conn.send_obj({"Ctl": "prune", "Addr": joiner.addr, "Root": pruned_author.addr})
    pruned = ctx.message("routing: from a", pruned_author)
    other = ctx.message("routing: from b", other_author)
    origin = await ctx.connect()
    await origin.send_obj(pruned, other)
    addr = _peer_addr(ctx)
    await ctx.until(
        lambda: bool(joiner.got(other)),
        f"the message of {other_author.addr}, whole, at the joiner (its prune named only "
        f"{pruned_author.addr})",
    )
    await ctx.until(
        lambda: _announced(joiner, addr, pruned),
        f"an ihave naming the message of {pruned_author.addr} at the joiner",
    )
    if joiner.got(pruned):
        raise CaseFailed("pushed a message whole to a neighbour whose prune named its author")
    return "announced the pruned author's message, pushed the other's whole"


@case(
    "routing",
    "routing-graft-missing",
    "§7.9, §7.11",
    "grafts an announced ID it lacks, never one it holds (a presence announcement it was "
    "sent, flooded, included)",
)
async def routing_graft_missing(ctx: CaseContext) -> str:
    conn, joiner = await _neighbour(ctx)
    author = await ctx.fake("author")
    held: dict[str, Any] = ctx.message("routing: held", author)
    what = "a chat message"
    if PRESENCE in (_caps(conn.head) or ()):
        held = {"Presence": "here", "ID": random_id(), "Addr": author.addr, "Nick": "held"}
        what = "a presence announcement"
    origin = await ctx.connect()
    await origin.send_obj(held)
    addr = _peer_addr(ctx)
    await ctx.until(
        lambda: bool(joiner.got(held)) or _announced(joiner, addr, held),
        f"{what} at the joiner (pushed, or announced with ihave)",
    )
    lacked = random_id()
    await conn.send_obj({"Ctl": "ihave", "Addr": joiner.addr, "IDs": [held["ID"], lacked]})
    await ctx.until(
        lambda: _names(joiner, "graft", addr, lacked),
        "a graft naming the ID it lacks at the joiner",
    )
    if _names(joiner, "graft", addr, held["ID"]):
        raise CaseFailed(f"grafted the ID of {what} it already held (it was sent it whole)")
    return f"grafted the ID it lacked, not that of {what} it held"
