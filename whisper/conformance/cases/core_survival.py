"""Level ``core``, part 2: input a peer must survive (PROTOCOL.md §1.4, §2.2, §2.5, §5.2).

Rules for every case here:
- Each starts from a working connection (or sink) and ends by showing the peer still relays;
  "the peer crashed" is seen as its process exiting or it refusing new connections.
- The cases that send what crashes some peers are ``fresh``: a peer process of their own.
"""

from __future__ import annotations

from ..context import CaseContext, CaseFailed, now_ms, random_id
from ..registry import case

MALFORMED = b'{"ID":"conformance-malformed","Body":"two commas",,"Addr":"127.0.0.1:1"}\n'


@case(
    "core",
    "malformed",
    "§1.4",
    "malformed JSON closes that connection only; the peer keeps serving others",
    fresh=True,
)
async def malformed(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    conn = await ctx.connect()
    before = ctx.message("malformed: a valid message first")
    await conn.send_obj(before)
    await ctx.until(lambda: bool(sink.got(before)), "a valid message before the garbage")
    after = ctx.message("malformed: after the garbage, on the same connection")
    await conn.send(MALFORMED)
    await conn.send_obj(after)
    await ctx.until(
        lambda: conn.closed is not None or bool(sink.got(after)),
        "the connection to be closed after malformed JSON",
    )
    if sink.got(after):
        raise CaseFailed(
            "the connection stayed open after malformed JSON: the next message on it was relayed"
        )
    await ctx.check_alive(sink, "after the malformed connection was dropped")
    return f"the connection was {conn.closed}; a new connection is still relayed"


@case(
    "core",
    "no-body",
    "§2.2",
    "payloads with a missing or empty Body are ignored: not relayed, no error",
    fresh=True,
)
async def no_body(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    conn = await ctx.connect()
    addr = ctx.origin.addr
    missing = {"ID": random_id(), "Addr": addr, "Timestamp": now_ms(), "X-Ext": "no Body here"}
    empty = {"ID": random_id(), "Addr": addr, "Body": "", "Timestamp": now_ms()}
    await conn.send_obj(missing, empty)
    await ctx.settle(conn, sink, "payloads without Body")
    relayed = [what for what, m in (("missing", missing), ("empty", empty)) if sink.got(m)]
    if relayed:
        raise CaseFailed(
            f"relayed a payload whose Body is {' and one whose Body is '.join(relayed)}"
        )
    return "ignored a missing and an empty Body; the next message on the connection was relayed"


@case(
    "core",
    "unknown-keys",
    "§2.5",
    "a message with keys the peer does not know is still relayed (keys kept or stripped)",
)
async def unknown_keys(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    conn = await ctx.connect()
    extra = {"X-Extension": {"list": [1, 2.5, None, True, {"k": "v"}]}, "zz": "last key"}
    message = ctx.message("unknown keys: relay me anyway")
    message.update(extra)
    await conn.send_obj(message)
    await ctx.settle(conn, sink, "a message with unknown keys")
    got = sink.first(message)
    if got is None:
        raise CaseFailed("a message with unknown keys was not relayed")
    for key in ("ID", "Addr", "Body"):
        if got.get(key) != message[key]:
            raise CaseFailed(f"relayed with {key}={got.get(key)!r}, sent {message[key]!r}")
    kept = [k for k in extra if got.get(k) == extra[k]]
    absent = [k for k in extra if k not in got]
    if len(kept) == len(extra):
        return "relayed with the unknown keys kept intact"
    if len(absent) == len(extra):
        return "relayed with the unknown keys stripped"
    return (
        f"relayed; unknown keys kept: {kept or 'none'}, stripped: {absent or 'none'}, rest changed"
    )


@case(
    "core",
    "refused-dial",
    "§5.2",
    "an Addr that refuses connections does not stop relaying to other peers",
    fresh=True,
)
async def refused_dial(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    conn = await ctx.connect()
    dead = ctx.message("refused dial: my Addr refuses connections")
    dead["Addr"] = ctx.closed_port()
    await conn.send_obj(dead)
    await ctx.settle(conn, sink, f"a message whose Addr ({dead['Addr']}) refuses connections")
    if not sink.got(dead):
        raise CaseFailed("the message whose Addr refuses connections was not relayed")
    await ctx.check_alive(sink, f"after dialling {dead['Addr']} was refused")
    return "relayed the message and later ones, although dialling its Addr was refused"
