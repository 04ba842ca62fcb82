"""Level ``flood-control``: floods are contained and cut off, relays are not (PROTOCOL.md §7.4).

Rules for every case here:
- The limits are the network's, from §7.4: one origin's new messages are relayed up to
  ``BURST`` at once and ``RATE`` a second after that.  A case allows 1% more than the limit
  over the time it measured (timers and scheduling), and the *flood* is far above it: 3,000
  messages at once, or ``FLOOD_RATE`` a second (100 times ``RATE``) for up to ``FLOOD_FOR``.
- Each case's other traffic stays well inside the limits, as honest peers' does, and comes
  from origins of its own (a fake each, so that the peer's dial-backs succeed).  A message
  of the flooded origin cannot serve as a marker (the peer is right to drop it), so markers
  and probes come from another origin.
- To know that the peer has handled everything a connection sent, the case waits for either
  that connection to be closed or a marker written after it to be relayed (§8.1), then sends
  a probe on a new connection: the sink gets the probe after anything relayed before it.
- The cases make the peer blacklist the suite's fakes, so each needs a fresh peer (``fresh``).
"""

from __future__ import annotations

from typing import Any

import trio

from ..context import CaseContext, CaseFailed
from ..fakes import Connection, FakePeer, encode
from ..registry import case

BURST = 500  # PROTOCOL.md §7.4: new messages of one origin relayed at once ...
RATE = 20.0  # ... and a second after that
HONEST_BURST = 200  # a pasted block of text: every peer must relay it whole
SLACK = 1.01
BLOCK = 3000  # flood-contained: written at once
FLOOD_RATE = 2000.0  # flooder-cut-off, relay-not-blamed: 100 x RATE ...
FLOOD_FOR = 5.0  # ... for at most this long: §7.4 cuts it off long before
TICK = 0.05


def limit(seconds: float) -> int:
    """The most of one origin a conforming peer relays in ``seconds`` (with the slack)."""
    return int((BURST + RATE * seconds) * SLACK)


async def _flood(
    ctx: CaseContext,
    conn: Connection,
    sender: FakePeer,
    sent: list[str],
    drained: trio.Event | None = None,
) -> None:
    """Write new messages of ``sender`` at ``FLOOD_RATE`` until the peer closes ``conn`` or
    ``FLOOD_FOR`` has passed; their IDs go into ``sent``.  ``drained`` is set once more than
    ``BURST`` have been written (the origin's budget is spent)."""
    start = trio.current_time()
    per_tick = int(FLOOD_RATE * TICK)
    tick = 0
    while trio.current_time() - start < FLOOD_FOR:
        batch = [ctx.message(f"flood {len(sent) + i}", sender) for i in range(per_tick)]
        if not await conn.send(b"".join(encode(m) for m in batch)):
            return
        sent.extend(m["ID"] for m in batch)
        if drained is not None and len(sent) > BURST + 100:
            drained.set()
        tick += 1
        await trio.sleep_until(start + tick * TICK)  # pacing


async def _probe(ctx: CaseContext, sink: FakePeer, sender: FakePeer, after: str) -> None:
    """A message of ``sender`` on a new connection reaches ``sink``; fails if the peer refuses
    or closes that connection instead."""
    conn = await ctx.connect(f"{sender.name}'s new connection")
    probe = ctx.message(f"flood-control: {sender.name} still relayed {after}?", sender)
    await conn.send_obj(probe)
    await ctx.until(
        lambda: bool(sink.got(probe)) or conn.closed is not None,
        f"a message of another origin, on a new connection, relayed {after}",
    )
    if not sink.got(probe):
        raise CaseFailed(
            f"closed a new connection from 127.0.0.1 carrying another origin's message {after}"
            f" ({conn.closed}): a loopback address is shared by many peers and must not be"
            " blacklisted as a whole"
        )


async def _handled(ctx: CaseContext, conn: Connection, sink: FakePeer, sender: FakePeer) -> None:
    """Wait until the peer has closed ``conn`` or relayed a marker of ``sender`` written on it."""
    marker = ctx.message("flood-control: marker", sender)
    await conn.send_obj(marker)
    await ctx.until(
        lambda: conn.closed is not None or bool(sink.got(marker)),
        "the flooding connection to be closed, or a marker sent after the flood",
    )


def _count(sink: FakePeer, ids: list[str]) -> int:
    return sum(1 for i in ids if i in sink.by_id)


@case(
    "flood-control",
    "flood-contained",
    "§7.4",
    f"of {BLOCK:,} messages of one origin written at once, relays the first {HONEST_BURST}"
    f" and at most {BURST} + {RATE:g}/s; another origin's are all relayed",
    fresh=True,
)
async def flood_contained(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    other = await ctx.fake("other")
    conn = await ctx.connect("flood")
    started = trio.current_time()
    flood = [ctx.message(f"flood {i}") for i in range(BLOCK)]
    ctx.observer.step = f"writing {BLOCK:,} messages of one origin"
    await conn.send(b"".join(encode(m) for m in flood))
    chat = [ctx.message(f"flood-control: chat {i}", other) for i in range(10)]
    side = await ctx.connect("another origin")
    await side.send_obj(*chat)
    await _handled(ctx, conn, sink, other)
    await _probe(ctx, sink, other, "after the flood")
    seconds = trio.current_time() - started
    ids = [m["ID"] for m in flood]
    relayed, most = _count(sink, ids), limit(seconds)
    lost = [m["Body"] for m in chat if not sink.got(m)]
    if lost:
        raise CaseFailed(f"dropped another origin's messages during the flood: {lost[0]!r} ...")
    if relayed > most:
        raise CaseFailed(
            f"relayed {relayed} of {BLOCK} messages of one origin written at once; the limit"
            f" allows at most {most} in the {seconds:.1f}s measured"
        )
    missing = [i for i in ids[:HONEST_BURST] if i not in sink.by_id]
    if missing:
        raise CaseFailed(
            f"relayed only {HONEST_BURST - len(missing)} of the first {HONEST_BURST} messages"
            f" of the origin: a burst that size (a paste) must pass"
        )
    how = f"the flooding connection was {conn.closed}" if conn.closed else "it stayed open"
    return f"relayed {relayed} of {BLOCK} (at most {most} allowed) and all of another's; {how}"


@case(
    "flood-control",
    "flooder-cut-off",
    "§7.4",
    f"closes a connection flooding one origin at {FLOOD_RATE:,.0f}/s within {FLOOD_FOR:g}s;"
    " a new connection from the same IP with another origin is still relayed",
    fresh=True,
)
async def flooder_cut_off(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    other = await ctx.fake("other")
    conn = await ctx.connect("flood")
    sent: list[str] = []
    started = trio.current_time()
    ctx.observer.step = f"flooding at {FLOOD_RATE:,.0f} messages/s"
    await _flood(ctx, conn, ctx.origin, sent)
    seconds = trio.current_time() - started
    if conn.closed is None:
        await _handled(ctx, conn, sink, other)
    if conn.closed is None:
        raise CaseFailed(
            f"the connection was still open after flooding {len(sent):,} messages of one"
            f" origin in {seconds:.1f}s ({_count(sink, sent):,} relayed)"
        )
    await _probe(ctx, sink, other, "after the flooder was cut off")
    relayed, most = _count(sink, sent), limit(trio.current_time() - started)
    if relayed > most:
        raise CaseFailed(f"cut the flooder off, but relayed {relayed} of its messages (> {most})")
    return (
        f"closed it after {seconds:.1f}s and {len(sent):,} messages ({relayed} relayed);"
        " another origin on a new connection is still relayed"
    )


@case(
    "flood-control",
    "relay-not-blamed",
    "§7.4",
    f"keeps a relay's connection that carries a flooded origin within its limit ({BURST} at"
    f" once, then {RATE:g}/s) and other origins, while the flood enters on another",
    fresh=True,
)
async def relay_not_blamed(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    others = [await ctx.fake(f"other{i}") for i in range(3)]
    relay = await ctx.connect("relay")  # opened before any flood, as a relay's link is
    await relay.send_obj(ctx.message("flood-control: the relay's first message", others[0]))
    flood = await ctx.connect("flood")
    flood_ids: list[str] = []
    relayed_by_relay: list[dict[str, Any]] = []
    chat: list[dict[str, Any]] = []
    done, drained = trio.Event(), trio.Event()

    async def forward() -> None:
        """What a conforming relay may send: the origin's burst, then its rate; others'."""
        await drained.wait()  # sent into the flood, when the origin's budget is spent
        batch = [ctx.message(f"relayed {i}") for i in range(BURST)]
        relayed_by_relay.extend(batch)
        await relay.send_obj(*batch)
        start, tick = trio.current_time(), 0
        while not done.is_set():
            tick += 1
            await trio.sleep_until(start + tick / RATE)  # pacing
            message = ctx.message(f"relayed {len(relayed_by_relay)}")
            relayed_by_relay.append(message)
            chat.append(ctx.message(f"chat {tick}", others[tick % len(others)]))
            if not await relay.send_obj(message, chat[-1]):
                return

    async with ctx.background(forward):
        ctx.observer.step = f"flooding at {FLOOD_RATE:,.0f} messages/s beside a relay"
        await _flood(ctx, flood, ctx.origin, flood_ids, drained)
        drained.set()
        with trio.move_on_after(1.0):  # the relay goes on for a second after the flood
            while relay.closed is None:
                await ctx.observer.changed()
        done.set()
    if relay.closed is None:
        await _handled(ctx, relay, sink, others[0])
    if relay.closed is not None:
        origin_sent = len(relayed_by_relay)
        raise CaseFailed(
            f"closed the relay's connection ({relay.closed}) after it carried {origin_sent} of"
            f" the flooded origin's messages (within its limit) and {len(chat)} of others'"
        )
    lost = [m["Body"] for m in chat if not sink.got(m)]
    if lost:
        raise CaseFailed(f"dropped other origins' messages carried by the relay: {lost[0]!r} ...")
    cut = f"the flood's connection was {flood.closed}" if flood.closed else "the flood's was not"
    return (
        f"kept the relay's connection ({len(relayed_by_relay)} of the flooded origin's messages"
        f" and {len(chat)} of others', all relayed); {cut}"
    )
