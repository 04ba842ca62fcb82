"""Level ``backlog``: recent messages replayed to a newly dialled peer (PROTOCOL.md §7.3).

Rules for every case here:
- A first sink (the *witness*) is registered, and the origin sends the recent messages; the
  witness receiving them live shows the peer accepted them.  Then a *newcomer* fake says
  hello with its own ``Addr``; the peer dials it back, and everything the newcomer receives
  before a marker sent after that dial is the replay (a replay is written first, §7.3).
- Messages the suite wants replayed are a few seconds old and carry distinct Timestamps,
  sent out of Timestamp order, so that "oldest first" is by Timestamp, not arrival.
- A peer that replays nothing fails every case of the level (it does not implement it).
"""

from __future__ import annotations

import time
from typing import Any

import trio

from ..context import CaseContext, CaseFailed, now_ms
from ..fakes import FakePeer
from ..registry import case

REPLAY_MAX_AGE = 480.0  # PROTOCOL.md §7.3: never replay a message older than 8 minutes
HISTORY_KEY = "History"


def _aged(ctx: CaseContext, body: str, age: float, sender: FakePeer | None = None) -> dict:
    message = ctx.message(body, sender)
    message["Timestamp"] = now_ms() - int(age * 1000)
    return message


async def _replay(
    ctx: CaseContext, recent: list[dict[str, Any]], *, wait_until: float | None = None
) -> tuple[FakePeer, list[dict[str, Any]], list[dict[str, Any]]]:
    """Send ``recent``; then have a newcomer dialled.  Returns the newcomer, the messages
    the witness received live, and the objects the newcomer received before the marker."""
    (witness,) = await ctx.sinks(1)
    conn = await ctx.connect()
    await conn.send_obj(*recent)
    await ctx.settle(conn, witness, "the recent messages")
    accepted = [m for m in recent if witness.got(m)]
    if wait_until is not None:  # let the clock pass a limit: nothing observable to wait for
        await trio.sleep(max(0.0, wait_until - time.time()))
    newcomer = await ctx.fake("newcomer")
    hello = ctx.message("backlog: hello from the newcomer", newcomer)
    await conn.send_obj(hello)
    await ctx.until(lambda: newcomer.accepted > 0, f"a connection to the newcomer {newcomer.addr}")
    marker = await ctx.settle(conn, newcomer, "the newcomer was dialled")
    before = []
    for obj in newcomer.received:
        if obj.get("ID") == marker["ID"]:
            break
        before.append(obj)
    return newcomer, accepted, before


def _bodies(objects: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> list[str]:
    ids = {m["ID"] for m in wanted}
    return [o["Body"] for o in objects if o.get("ID") in ids]


def _none_replayed(accepted: list[dict[str, Any]]) -> CaseFailed:
    return CaseFailed(
        "the newcomer was replayed none of the recent messages "
        f"({len(accepted)} had reached the witness sink live)"
    )


@case(
    "backlog",
    "backlog-replay",
    "§7.3",
    'a newly dialled peer is first replayed recent messages, oldest first, with "History": true',
)
async def backlog_replay(ctx: CaseContext) -> str:
    recent = [
        _aged(ctx, "backlog: second oldest", 3),
        _aged(ctx, "backlog: oldest", 4),
        _aged(ctx, "backlog: newest", 1),
    ]
    _, accepted, replay = await _replay(ctx, recent)
    if len(accepted) < len(recent):
        raise CaseFailed(f"only {len(accepted)} of 3 recent messages were relayed live")
    got = _bodies(replay, recent)
    if not got:
        raise _none_replayed(accepted)
    want = ["backlog: oldest", "backlog: second oldest", "backlog: newest"]
    if sorted(got) != sorted(want):
        raise CaseFailed(f"replayed {len(set(got))} of the 3 recent messages, {len(got)} copies")
    if got != want:
        raise CaseFailed(f"replayed not oldest first (by Timestamp): {got}")
    unmarked = [o["Body"] for o in replay if o["Body"] in want and o.get(HISTORY_KEY) is not True]
    if unmarked:
        raise CaseFailed(f'replayed without "History": true: {unmarked}')
    return 'replayed all 3 before anything else, oldest first, marked "History": true'


@case(
    "backlog",
    "backlog-not-own",
    "§7.3",
    "a replay never holds a message whose Addr is the dialled peer's",
)
async def backlog_not_own(ctx: CaseContext) -> str:
    recent = [_aged(ctx, "backlog: someone else's", 2)]
    newcomer, accepted, replay = await _replay(ctx, recent)
    own = [o for o in newcomer.received if o.get("Addr") == newcomer.addr]
    if own:
        raise CaseFailed(f"sent the newcomer {len(own)} message(s) with its own Addr")
    if not _bodies(replay, recent):
        raise _none_replayed(accepted)
    return "replayed the others' recent messages, not the newcomer's own hello"


@case(
    "backlog",
    "backlog-fresh-only",
    "§7.3",
    "a replay holds no message older than 8 minutes at the time of the replay",
)
async def backlog_fresh_only(ctx: CaseContext) -> str:
    edge = _aged(ctx, "backlog: 8 minutes old by the time of the replay", REPLAY_MAX_AGE - 1.5)
    fresh = _aged(ctx, "backlog: fresh", 1)
    limit = edge["Timestamp"] / 1000 + REPLAY_MAX_AGE + 0.5
    _, accepted, replay = await _replay(ctx, [edge, fresh], wait_until=limit)
    if _bodies(replay, [edge]):
        age = time.time() - edge["Timestamp"] / 1000
        raise CaseFailed(f"replayed a message {age:.0f}s old (more than 8 minutes)")
    if not _bodies(replay, [fresh]):
        raise _none_replayed(accepted)
    if edge not in accepted:
        return "replayed the fresh message; the 478-second-old one was not accepted at all"
    return "replayed the fresh message, not the one that had turned 8 minutes old"
