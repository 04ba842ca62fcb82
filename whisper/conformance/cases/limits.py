"""Level ``limits``: messages beyond a limit drop the connection (PROTOCOL.md §1.3, §1.4).

Rules:
- Oversized: a valid message of 2 MiB, twice the protocol's 1 MiB maximum.  Deeply nested:
  a small message with 1,000 levels of nesting under an unknown key (whisper refuses more than
  32; Go's encoding/json accepts up to 10,000).
- The offending message is followed by a marker on the same connection.  A conforming peer
  closes the connection (EOF or reset seen by the suite) and the marker never arrives; if the
  marker arrives, the peer accepted the message.  Then a new connection must still be relayed.
"""

from __future__ import annotations

from ..context import CaseContext, CaseFailed
from ..fakes import encode
from ..registry import case

OVERSIZED = 2 * 1024 * 1024
DEPTH = 1000


async def _must_drop(ctx: CaseContext, data: bytes, message: dict, what: str) -> str:
    (sink,) = await ctx.sinks(1)
    conn = await ctx.connect()
    after = ctx.message(f"limits: after {what}, on the same connection")
    ctx.observer.step = f"sending {what}"
    if await conn.send(data):
        await conn.send_obj(after)
    await ctx.until(
        lambda: conn.closed is not None or bool(sink.got(after)),
        f"the connection to be closed after {what}",
    )
    if sink.got(after) or sink.got(message):
        seen = "relayed it" if sink.got(message) else "kept the connection open"
        raise CaseFailed(f"accepted {what}: {seen}")
    await ctx.check_alive(sink, f"after dropping the connection that sent {what}")
    return f"the connection was {conn.closed}; a new connection is still relayed"


@case(
    "limits",
    "oversized",
    "§1.3, §1.4",
    "a 2 MiB message drops the connection; the peer keeps relaying",
    fresh=True,
)
async def oversized(ctx: CaseContext) -> str:
    message = ctx.message("x" * OVERSIZED)
    return await _must_drop(ctx, encode(message), message, "a 2 MiB message")


@case(
    "limits",
    "deep-nesting",
    "§1.3, §1.4",
    f"a message nested {DEPTH:,} levels deep drops the connection; the peer keeps relaying",
    fresh=True,
)
async def deep_nesting(ctx: CaseContext) -> str:
    message = ctx.message(f"limits: nested {DEPTH} levels deep")
    # Built as text: json.dumps would hit Python's recursion limit.
    deep = b"[" * (DEPTH - 1) + b"0" + b"]" * (DEPTH - 1)
    data = b'{"X-Deep":' + deep + b"," + encode(message)[1:]
    return await _must_drop(ctx, data, message, f"a message nested {DEPTH:,} levels deep")
