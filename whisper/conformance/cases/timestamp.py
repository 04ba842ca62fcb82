"""Level ``timestamp``: the freshness window of extension 3 (PROTOCOL.md §4.2).

Rules:
- Timestamps below 100,000,000,000 are seconds, others milliseconds; 0 or no Timestamp
  means "none" and is accepted.
- "Too old" and "far future" are a day away from now, past any sane window (whisper's is
  9 minutes back and 60 s ahead), in both units.
"""

from __future__ import annotations

import time

from ..context import CaseContext, CaseFailed, now_ms
from ..registry import case

DAY = 24 * 3600


def _stamped(ctx: CaseContext, body: str, timestamp: int) -> dict:
    message = ctx.message(body)
    message["Timestamp"] = timestamp
    return message


async def _send_and_settle(ctx: CaseContext, messages: list[dict], what: str) -> list[dict]:
    """Send; return the messages that were relayed."""
    (sink,) = await ctx.sinks(1)
    conn = await ctx.connect()
    await conn.send_obj(*messages)
    await ctx.settle(conn, sink, what)
    return [m for m in messages if sink.got(m)]


@case(
    "timestamp",
    "seconds-and-ms",
    "§4.2",
    "current Timestamps in seconds (the Go peer) and in milliseconds are both accepted",
)
async def seconds_and_ms(ctx: CaseContext) -> str:
    seconds = _stamped(ctx, "timestamp: now, in seconds", int(time.time()))
    millis = _stamped(ctx, "timestamp: now, in milliseconds", now_ms())
    relayed = await _send_and_settle(ctx, [seconds, millis], "current timestamps")
    if seconds not in relayed:
        raise CaseFailed(f"dropped a current Timestamp in seconds ({seconds['Timestamp']})")
    if millis not in relayed:
        raise CaseFailed(f"dropped a current Timestamp in milliseconds ({millis['Timestamp']})")
    return "relayed both"


@case("timestamp", "too-old", "§4.2", "a message timestamped a day ago is dropped (s and ms)")
async def too_old(ctx: CaseContext) -> str:
    return await _dropped_a_day_away(ctx, -DAY, "ago", "a day old")


@case("timestamp", "far-future", "§4.2", "a message timestamped a day ahead is dropped (s and ms)")
async def far_future(ctx: CaseContext) -> str:
    return await _dropped_a_day_away(ctx, DAY, "ahead", "a day ahead")


async def _dropped_a_day_away(ctx: CaseContext, offset: int, when: str, label: str) -> str:
    """Send one message stamped ``offset`` seconds away in seconds, one in ms: both dropped?"""
    seconds = _stamped(ctx, f"timestamp: {label}, in seconds", int(time.time()) + offset)
    millis = _stamped(ctx, f"timestamp: {label}, in milliseconds", now_ms() + offset * 1000)
    what = "day-old messages" if offset < 0 else "messages from a day ahead"
    relayed = await _send_and_settle(ctx, [seconds, millis], what)
    if relayed:
        units = " and ".join("seconds" if m is seconds else "milliseconds" for m in relayed)
        raise CaseFailed(f"relayed a message timestamped a day {when} (in {units})")
    return "dropped both (seconds and milliseconds)"


@case("timestamp", "no-timestamp", "§4.2", "a message without Timestamp, or with 0, is accepted")
async def no_timestamp(ctx: CaseContext) -> str:
    absent = ctx.message("timestamp: none at all")
    del absent["Timestamp"]
    zero = _stamped(ctx, "timestamp: 0, as the Go peer relays a missing one", 0)
    relayed = await _send_and_settle(ctx, [absent, zero], "messages without timestamps")
    dropped = [what for what, m in (("absent", absent), ("0", zero)) if m not in relayed]
    if dropped:
        raise CaseFailed(
            f"dropped a message whose Timestamp is {' and one whose is '.join(dropped)}"
        )
    return "relayed both (no Timestamp key, Timestamp 0)"
