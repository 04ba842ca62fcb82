"""Level ``limits``: messages beyond a limit drop the connection (PROTOCOL.md §1.3, §1.4);
idle connections do not use up the connection limit (§5.4).

Rules:
- Oversized: a valid message of 2 MiB, twice the protocol's 1 MiB maximum.  Deeply nested:
  a small message with 1,000 levels of nesting under an unknown key (whisper refuses more than
  32; Go's encoding/json accepts up to 10,000).
- The offending message is followed by a marker on the same connection.  A conforming peer
  closes the connection (EOF or reset seen by the suite) and the marker never arrives; if the
  marker arrives, the peer accepted the message.  Then a new connection must still be relayed.
- Idle connections: after a sink is registered, ``IDLE`` connections (more than the 128 a
  peer may cap its incoming connections at) are opened and send nothing.  Then a newcomer
  connects every ``NEWCOMER_INTERVAL`` and sends a message of the origin, until one is
  relayed: a peer that caps its connections must let a newcomer take the slot of one that
  has sent nothing for a while (§5.4 allows a grace of up to 10 s), so it passes within
  the case timeout; one that refuses newcomers while idle connections hold every slot times
  out.
"""

from __future__ import annotations

import trio

from ..context import CaseContext, CaseFailed
from ..fakes import Connection, encode
from ..registry import case

OVERSIZED = 2 * 1024 * 1024
DEPTH = 1000
IDLE = 130
NEWCOMER_INTERVAL = 0.5


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


@case(
    "limits",
    "idle-connections",
    "§5.4",
    f"{IDLE} connections that send nothing do not keep a newcomer out: its message is relayed",
    fresh=True,
)
async def idle_connections(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    idle = [await ctx.connect(f"idle connection {i + 1}") for i in range(IDLE)]
    started = trio.current_time()
    newcomers: list[tuple[Connection, str]] = []
    refused: list[str] = []  # the peer refused a TCP connection: it is gone

    async def newcomer_after_newcomer() -> None:
        while True:
            try:
                conn = await ctx.connect(f"newcomer {len(newcomers) + 1}")
            except CaseFailed as exc:
                refused.append(exc.detail)
                ctx.observer.notify()
                return
            message = ctx.message(f"limits: newcomer {len(newcomers) + 1}")
            newcomers.append((conn, message["ID"]))
            await conn.send_obj(message)
            await trio.sleep(NEWCOMER_INTERVAL)

    def seen() -> str:
        shut = sum(1 for conn, _ in newcomers if conn.closed)
        evicted = sum(1 for conn in idle if conn.closed)
        closed = "all" if shut == len(newcomers) else f"{shut} of them"
        return (
            f"{len(newcomers)} newcomers connected, {closed} closed by the peer; "
            f"{evicted} of the {IDLE} idle connections were closed by the peer"
        )

    async with ctx.background(newcomer_after_newcomer):
        await ctx.until(
            lambda: bool(refused) or sink.got_any([i for _, i in newcomers]),
            f"a newcomer's message relayed while {IDLE} idle connections were open",
            seen,
        )
    if refused:
        raise CaseFailed(refused[0])
    waited = trio.current_time() - started
    first = next(n for n, (_, i) in enumerate(newcomers, 1) if sink.got(i))
    return f"relayed the message of newcomer {first} after {waited:.1f}s; {seen()}"
