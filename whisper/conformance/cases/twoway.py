"""Level ``routing``: two-way links, for a peer nobody can dial (PROTOCOL.md §7.12).

Rules for every case here:
- The suite plays the peer that cannot be dialled: on a connection of its own it writes a
  hello whose ``Addr`` is a port nobody listens on, naming ``twoway`` in ``Speaks`` and not
  ``routing`` (so that a peer routing by the overlay pushes it every message whole, §7.8).
  What the peer writes back after its banner is read as whispernet JSON (``Connection``).
- A hello (no ``Body``) goes only to a peer whose banner named what the case needs: a peer
  that names no ``twoway`` FAILS ``twoway-reverse``, sent nothing that could crash it; one
  that writes no banner is checked by ``twoway-oneway`` on connections without a hello only.
- Messages relayed back are probes, repeated (``CaseContext.probe``) until one arrives (a
  peer may replay the earlier ones, §7.3, or drop them on a busy link, §5.3): the peer
  adopts the connection when it reads the hello, which races with the probes' connection.
- To show that a connection stays one-way, the case settles every connection it opened
  (``CaseContext.settle``: a marker each, relayed to a registered sink) and then a message
  from another one, and only then looks at what each was written.
"""

from __future__ import annotations

import json
from typing import Any

from ..context import CaseContext, CaseFailed
from ..fakes import Connection
from ..registry import case
from .hello import _banner, _speaking

TWOWAY = "twoway"
SPEAKS = ["hello", "presence", TWOWAY]
BODY = "two-way: for the peer behind NAT"


def _hello(addr: str, **fields: Any) -> dict[str, Any]:
    return {"Ctl": "hello", "Addr": addr, "Nick": "nat", "Speaks": SPEAKS, **fields}


def _back(conn: Connection, ids: list[str]) -> list[dict[str, Any]]:
    return [o for o in conn.received if o.get("ID") in ids]


@case(
    "routing",
    "twoway-reverse",
    "§7.12",
    'writes every message it relays on a connection whose hello said "Reverse": true',
)
async def twoway_reverse(ctx: CaseContext) -> str:
    conn = await _speaking(ctx, TWOWAY)
    nobody = ctx.closed_port()  # the Addr of a peer behind NAT: a dial there is refused
    await conn.send_obj(_hello(nobody, Reverse=True))
    probes: list[str] = []
    await ctx.probe(
        await ctx.connect(),
        BODY,
        lambda: bool(_back(conn, probes)) or conn.garbage is not None or bool(conn.closed),
        f"a message relayed back on the connection whose hello said Reverse (Addr {nobody}, "
        "where nobody listens)",
        lambda: f"it wrote {len(conn.received)} object(s) there after its banner",
        probes,
    )
    if conn.garbage is not None:
        raise CaseFailed(f"wrote malformed data after its banner ({conn.garbage})")
    if not _back(conn, probes):
        raise CaseFailed(f"closed the connection whose hello said Reverse ({conn.closed})")
    copy = _back(conn, probes)[0]
    sent = {"Addr": ctx.origin.addr, "Body": BODY}
    if any(copy.get(k) != v for k, v in sent.items()):
        raise CaseFailed(f"relayed the message back altered: {json.dumps(copy)[:120]}")
    return f"relayed it back on that connection ({len(conn.received)} object(s) written there)"


@case(
    "routing",
    "twoway-oneway",
    "§7.12",
    "writes nothing after its banner on connections whose hello did not say "
    '"Reverse": true, nor on one that wrote no hello',
)
async def twoway_oneway(ctx: CaseContext) -> str:
    first, caps, _ = await _banner(ctx)
    sink = await ctx.fake("sink")
    await ctx.register(sink)
    go = await ctx.connect("Go-style, no hello")
    quiet = {"the connection that wrote no hello": go}
    if caps is not None and "hello" in caps:
        asked = await ctx.connect('hello with "Reverse": "true"')
        newcomers = [await ctx.fake("newcomer1"), await ctx.fake("newcomer2")]
        await first.send_obj(_hello(newcomers[0].addr))
        await asked.send_obj(_hello(newcomers[1].addr, Reverse="true"))
        quiet = {
            "the connection whose hello did not ask (no Reverse)": first,
            'the connection whose hello said "Reverse": "true" (a string)': asked,
            **quiet,
        }
    else:
        quiet["the connection that read the banner"] = first
    for name, conn in quiet.items():
        await ctx.settle(conn, sink, f"a message on {name}")
    await ctx.settle(await ctx.connect(), sink, "a message on another connection")
    for name, conn in quiet.items():
        if conn.received or conn.garbage is not None:
            what = json.dumps(conn.received[0])[:100] if conn.received else conn.garbage
            raise CaseFailed(
                f"wrote {len(conn.received)} object(s) after its banner on {name}, e.g. {what}: "
                "a connection stays one-way unless its hello asks (§7.12)"
            )
    if len(quiet) == 2:
        return "speaks no extension (no banner) and wrote nothing on the suite's connections"
    return f"wrote nothing after its banner on {len(quiet)} connections that did not ask"
