"""Level ``core``, part 1: relaying, deduplication, framing and dial-back (PROTOCOL.md §1, §4, §5).

Rules for every case here:
- Messages come from the origin fake (its listening address is their ``Addr``) and are
  observed at sinks the peer under test dialled back.
- Whatever a case expects NOT to be relayed is followed by a marker on the same connection;
  the verdict is taken when the marker arrives (``CaseContext.settle``).
"""

from __future__ import annotations

import json
import random
import time

from ..context import CaseContext, CaseFailed
from ..fakes import encode
from ..registry import case

# Escapes, multi-byte UTF-8 (2, 3 and 4 bytes), and characters JSON encoders treat specially.
TRICKY_BODY = 'chunks: "quoted" \\ back\\slash\ttab é ü € 😀 \u2028 <&> end'


def _missing(sink_messages: list[tuple[str, bool]]) -> list[str]:
    return [label for label, arrived in sink_messages if not arrived]


@case("core", "relay", "§5.1", "a new message is relayed to every peer it is connected to")
async def relay(ctx: CaseContext) -> str:
    sinks = await ctx.sinks(2)
    conn = await ctx.connect()
    message = ctx.message("relay: hello, whispernet")
    await conn.send_obj(message)
    await ctx.until(lambda: all(s.got(message) for s in sinks), "the message at both sinks")
    for sink in sinks:
        got = sink.first(message) or {}
        for key in ("ID", "Addr", "Body"):
            if got.get(key) != message[key]:
                raise CaseFailed(
                    f"{sink.name} received {key}={got.get(key)!r}, sent {message[key]!r}"
                )
    return "both sinks received it with ID, Addr and Body unchanged"


@case("core", "dedupe", "§4.1", "a message whose ID was seen is not relayed again")
async def dedupe(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    first = await ctx.connect()
    message = ctx.message("dedupe: say it once")
    await first.send_obj(message)
    await ctx.until(lambda: bool(sink.got(message)), "the first copy at the sink")
    second = await ctx.connect("second origin")
    await second.send_obj(message, message)
    await ctx.settle(second, sink, "two more copies of a seen message")
    if sink.got(message) != 1:
        raise CaseFailed(f"the sink received the message {sink.got(message)} times")
    return "relayed once; two later copies from another connection were dropped"


@case("core", "unframed", "§1.2", "objects written back to back with nothing between are all read")
async def unframed(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    conn = await ctx.connect()
    batch = [ctx.message(f"unframed: object {i + 1} of 3") for i in range(3)]
    data = b"".join(encode(m).rstrip(b"\n") for m in batch)  # }{ with no whitespace
    await conn.send(data + b"\n")
    await ctx.settle(conn, sink, "three objects back to back")
    missing = _missing([(m["Body"], bool(sink.got(m))) for m in batch])
    if missing:
        raise CaseFailed(f"relayed {3 - len(missing)} of 3 back-to-back objects")
    return "all three relayed, written as one segment with no separator"


@case("core", "chunking", "§1.2", "an object split at any byte boundary is reassembled")
async def chunking(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    conn = await ctx.connect()
    raw = ctx.message(TRICKY_BODY + " (raw UTF-8, one byte per write)")
    escaped = ctx.message(TRICKY_BODY + " (\\u escapes, random pieces)")
    data_raw = encode(raw)
    data_escaped = json.dumps(escaped, ensure_ascii=True).encode() + b"\n"
    seed = random.randrange(1 << 16)
    rng = random.Random(seed)
    pieces = []
    while sum(pieces) < len(data_escaped):
        pieces.append(rng.randint(1, 7))
    ctx.observer.step = "writing an object one byte at a time"
    await conn.send_paced(data_raw, [1] * len(data_raw), pause=0.001)
    ctx.observer.step = "writing an object in random pieces"
    await conn.send_paced(data_escaped, pieces, pause=0.001)
    await ctx.settle(conn, sink, "two objects written in pieces")
    for message, how in ((raw, "byte by byte"), (escaped, f"in random pieces (seed {seed})")):
        got = sink.first(message)
        if got is None:
            raise CaseFailed(f"the object written {how} was not relayed")
        if got.get("Body") != message["Body"]:
            raise CaseFailed(f"the object written {how} came back with Body {got.get('Body')!r}")
    return (
        f"reassembled one object written byte by byte and one in {len(pieces)} random pieces;"
        " escapes and multi-byte UTF-8 intact"
    )


@case("core", "whitespace", "§1.2", "pretty-printed objects and any whitespace between are read")
async def whitespace(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    conn = await ctx.connect()
    pretty = ctx.message("whitespace: pretty-printed")
    spaced = ctx.message("whitespace: spaces around every token")
    data = (
        b" \t\r\n"
        + json.dumps(pretty, indent=2).encode()
        + b"\r\n\t  \n"
        + json.dumps(spaced, separators=(" , ", " : ")).replace("{", "{ ").encode()
        + b"\n\n \n"
    )
    await conn.send(data)
    await ctx.settle(conn, sink, "pretty-printed objects")
    missing = _missing(
        [("pretty-printed", bool(sink.got(pretty))), ("spaced", bool(sink.got(spaced)))]
    )
    if missing:
        raise CaseFailed(f"not relayed: the {' and the '.join(missing)} object")
    return "relayed a pretty-printed object and one with spaces, tabs and CRLF around tokens"


@case("core", "dial-back", "§5.1", "the peer dials the Addr of a new message and relays to it")
async def dial_back(ctx: CaseContext) -> str:
    newcomer = await ctx.fake("newcomer")
    started = time.monotonic()
    await ctx.register(newcomer)
    elapsed = (time.monotonic() - started) * 1000
    return (
        f"dialled {newcomer.addr} after a hello from it and relayed the next message to it"
        f" ({elapsed:.0f} ms)"
    )
