"""Level ``backpressure``: a stalled peer does not stall the others (PROTOCOL.md §5.3).

Rules:
- Two sinks are registered; one ("stalled") then never reads again and keeps its connection
  open, with a tiny receive buffer.  The origin sends a flood larger than the kernel can
  buffer towards the stalled sink (the largest send buffer a socket may get, plus 4 MiB), so
  a peer that writes to its links one after the other blocks part-way through.
- After the flood, on the same connection, markers follow (one every ``MARKER_INTERVAL``
  until one arrives, for peers that drop messages on a busy link).  The case passes when a
  marker reaches the other sink, i.e. messages sent after the stall still get through.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import trio

from ..context import CaseContext
from ..fakes import encode
from ..registry import case

MESSAGE_BODY = 64 * 1024
MARKER_INTERVAL = 0.25
MiB = 1024 * 1024


def flood_bytes() -> int:
    """More than one TCP connection can hold in kernel buffers on this machine."""
    largest = 4 * MiB
    for path, field, factor in (
        ("/proc/sys/net/ipv4/tcp_wmem", 2, 1),  # autotuning maximum
        ("/proc/sys/net/core/wmem_max", 0, 2),  # SO_SNDBUF maximum (the kernel doubles it)
    ):
        with contextlib.suppress(OSError, ValueError, IndexError):
            largest = max(largest, int(Path(path).read_text().split()[field]) * factor)
    return min(largest + 4 * MiB, 64 * MiB)


@case(
    "backpressure",
    "stalled-peer",
    "§5.3",
    "a peer that accepts but never reads does not stall delivery to the others",
)
async def stalled_peer(ctx: CaseContext) -> str:
    stalled = await ctx.fake("stalled", stall=True)
    fast = await ctx.fake("fast")
    await ctx.register(stalled, fast)
    conn = await ctx.connect()
    total = flood_bytes()
    count = total // MESSAGE_BODY + 1
    flood = [ctx.message(f"flood {i} " + "x" * MESSAGE_BODY) for i in range(count)]
    markers: list[str] = []

    async def pump() -> None:
        for message in flood:
            if not await conn.send(encode(message)):
                return
        while True:
            marker = ctx.message("backpressure: sent after the flood")
            markers.append(marker["ID"])
            if not await conn.send_obj(marker):
                return
            await trio.sleep(MARKER_INTERVAL)

    def seen() -> str:
        arrived = sum(1 for m in flood if fast.got(m))
        return (
            f"the other sink received {arrived} of {count} flood messages"
            f" ({conn.bytes_sent / MiB:.1f} MiB written to the peer)"
            + (f"; {conn.closed}" if conn.closed else "")
        )

    async with ctx.background(pump):
        await ctx.until(
            lambda: fast.got_any(markers), "a message sent after the flood at the other sink", seen
        )
    return f"{seen()}, then a message sent after it, while the stalled sink read nothing"
