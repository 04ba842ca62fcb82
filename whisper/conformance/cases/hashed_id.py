"""Level ``hashed-id``: IDs of the form ``hash:<function>:<hex>`` (PROTOCOL.md §3.2, §3.3).

Rules:
- Hashed IDs are computed here from §3.2 (``sha256(Addr + Body + T)``), not with whisper's
  own code, so that the suite checks the spec and not our implementation of it.
- A forged copy (a valid-looking ID over a different Body) is sent BEFORE the real message:
  a peer must drop the forgery and still relay the real one (§3.3: check before marking
  the ID seen).
- An escaped lone surrogate means U+FFFD (§1.3): a message whose ``Body`` holds one is sent
  with its ID hashed over U+FFFD, and must be relayed, its ``Body`` read as U+FFFD.
"""

from __future__ import annotations

import secrets

from ..context import CaseContext, CaseFailed, hashed_id
from ..fakes import encode
from ..registry import case

#: What an escaped lone surrogate means (§1.3): as written on the wire -> as read.
LONE_SURROGATES = {
    "\\ud800\\u0041": (rb"\ud800\u0041", "\ufffdA"),  # yajl alone reads U+10041
    "\\udce9": (rb"\udce9", "\ufffd"),  # yajl alone reads invalid UTF-8
}


@case(
    "hashed-id",
    "hash-valid",
    "§3.2, §3.3",
    "messages with a matching sha256 ID are relayed (with or without Timestamp, any hex case)",
)
async def hash_valid(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    conn = await ctx.connect()
    stamped = ctx.message("hashed: with a Timestamp")
    stamped["ID"] = hashed_id(stamped["Addr"], stamped["Body"], stamped["Timestamp"])
    bare = ctx.message("hashed: without a Timestamp")
    del bare["Timestamp"]
    bare["ID"] = hashed_id(bare["Addr"], bare["Body"], None)
    upper = ctx.message("hashed: digest in upper-case hex")
    digest = hashed_id(upper["Addr"], upper["Body"], upper["Timestamp"]).rpartition(":")[2]
    upper["ID"] = "hash:sha256:" + digest.upper()
    await conn.send_obj(stamped, bare, upper)
    await ctx.settle(conn, sink, "three messages with valid hashed IDs")
    dropped = [
        what
        for what, m in (("with a Timestamp", stamped), ("without one", bare), ("upper-case", upper))
        if not sink.got(m)
    ]
    if dropped:
        raise CaseFailed(f"dropped a valid hashed ID: {', '.join(dropped)}")
    return "relayed all three (with Timestamp, without, upper-case hex digest)"


@case(
    "hashed-id",
    "hash-mismatch",
    "§3.3",
    "a hashed ID that does not match is dropped, and does not suppress the real message",
)
async def hash_mismatch(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    conn = await ctx.connect()
    real = ctx.message("hashed: the real message")
    real["ID"] = hashed_id(real["Addr"], real["Body"], real["Timestamp"])
    forged = dict(real, Body="hashed: a forged copy under the real message's ID")
    await conn.send_obj(forged, real)
    await ctx.settle(conn, sink, "a forged copy and then the real message")
    bodies = [m.get("Body") for m in sink.by_id.get(real["ID"], [])]
    if forged["Body"] in bodies:
        raise CaseFailed("relayed a message whose hashed ID does not match its Body")
    if real["Body"] not in bodies:
        raise CaseFailed(
            "dropped the forgery but also the real message: the forged copy's ID was"
            " marked seen before its hash was checked"
        )
    return "dropped the forged copy; the real message with the same ID was relayed"


@case(
    "hashed-id",
    "hash-unknown-function",
    "§3.3",
    "an ID hash:<unknown function>:... is an opaque ID: relayed",
)
async def hash_unknown_function(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    conn = await ctx.connect()
    messages = []
    for function, nbytes in (("sha512", 64), ("blake3", 32)):
        message = ctx.message(f"hashed: unknown function {function}")
        message["ID"] = f"hash:{function}:{secrets.token_hex(nbytes)}"
        messages.append(message)
    await conn.send_obj(*messages)
    await ctx.settle(conn, sink, "messages with IDs of unknown hash functions")
    dropped = [m["ID"].split(":")[1] for m in messages if not sink.got(m)]
    if dropped:
        raise CaseFailed(f"dropped messages whose ID uses hash function {', '.join(dropped)}")
    return "relayed hash:sha512:... and hash:blake3:... IDs as opaque IDs"


@case(
    "hashed-id",
    "hash-lone-surrogate",
    "§1.3, §3.2",
    "messages with escaped lone surrogates, \\ud800\\u0041 and \\udce9, hashed over U+FFFD,"
    " are relayed with U+FFFD in their Body",
)
async def hash_lone_surrogate(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    conn = await ctx.connect()
    messages, data = {}, b""
    for written, (escaped, read) in LONE_SURROGATES.items():
        message = messages[written] = ctx.message(f"hashed: [{read}] was written [{written}]")
        message["ID"] = hashed_id(message["Addr"], message["Body"], message["Timestamp"])
        data += encode(message).replace(f"[{read}]".encode(), b"[" + escaped + b"]", 1)
    await conn.send(data)
    await ctx.settle(conn, sink, "messages with escaped lone surrogates")
    dropped = [written for written, m in messages.items() if not sink.got(m)]
    if dropped:
        raise CaseFailed(
            f"dropped the message(s) with {', '.join(dropped)} whose ID is hashed over U+FFFD:"
            " an escaped lone surrogate was not read as U+FFFD"
        )
    for written, message in messages.items():
        got = sink.first(message) or {}
        if got.get("Body") != message["Body"]:
            raise CaseFailed(f"relayed the message with {written} as {got.get('Body')!r}")
    return f"relayed both ({', '.join(messages)}) with U+FFFD in their Body"
