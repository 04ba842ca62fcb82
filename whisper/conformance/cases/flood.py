"""Level ``flood-control``: floods are contained and cut off, relays and the peers whose
``Addr`` a flood forges are not (PROTOCOL.md §7.4).

Rules for every case here:
- The limits are the network's, from §7.4: one origin's new messages on one connection are
  relayed up to ``BURST`` at once and ``RATE`` a second after that, and one connection is
  sent at most ``LINK_BURST`` at once and ``LINK_RATE`` a second after that.  A case allows
  1% more than the limit over the time it measured (from its first write to its last
  observation), and the flood is far above it: ``BLOCK`` messages at ``BLOCK_RATE``, or
  ``FLOOD_RATE`` a second for up to ``FLOOD_FOR``.  Floods are paced, so that a peer's link
  queue never has to drop (§5.3); where a case counts, it writes a fixed number, so that a
  loaded machine writing slowly still writes past the limit.
- Each case's other traffic stays well inside the limits, as honest peers' does, and comes
  from origins of its own (a fake each, so that the peer's dial-backs succeed).  A message
  of the flooded origin cannot serve as a marker (the peer is right to drop it), so markers
  and probes come from another origin, and are repeated every ``RETRY`` until one arrives.
- To know that the peer has handled a flood, a case waits for its connection to be closed
  or a marker written after it to be relayed (§8.1), then for a probe on a new connection:
  the sink gets the probe after anything relayed before it.
- The cases make the peer blacklist the suite's IP, so each needs a fresh peer (``fresh``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import trio

from ..context import CaseContext, CaseFailed
from ..fakes import Connection, FakePeer, encode
from ..registry import case

BURST = 500  # PROTOCOL.md §7.4: new messages of one origin relayed at once ...
RATE = 20.0  # ... and a second after that
HONEST_BURST = 200  # a pasted block of text: every peer must relay it whole
SLACK = 1.01
BLOCK = 3000  # flood-contained: this many ...
BLOCK_RATE = 1000.0  # ... at 50 x RATE (paced, so that no link queue overflows)
FLOOD_RATE = 2000.0  # flooder-cut-off, relay-not-blamed: 100 x RATE ...
FLOOD_FOR = 5.0  # ... for at most this long: §7.4 cuts it off long before
TICK = 0.05
RELAY_STOP = 5.0  # relay-not-blamed: how long the relay may take to finish its last write
RETRY = 0.5  # markers and probes are repeated, for peers that drop on a busy link (§5.3)
FORGERS = 4  # forged-addr: connections forging a sink's Addr, each ...
FORGE_RATE = 300.0  # ... at this many a second (under any per-connection limit) ...
FORGED = 800  # ... this many (past the budget for one origin), while that sink writes
OWN_RATE = 4.0  # this many of its own a second, all of which but one a peer must relay
WITHIN = 2.0  # ... and a message to that sink afterwards arrives within this (at once, really)
LINK_BURST = 1100  # relay-paced: what a peer may send on one connection at once ...
LINK_RATE = 500.0  # ... and a second after that (a receiver's budget for a new connection)
INPUTS = 3  # relay-paced: connections bringing new messages, each ...
INPUT_RATE = 400.0  # ... at this many a second (within any per-connection limit) ...
INPUT_TOTAL = 1200  # ... this many (3 s; more than a receiver's budget takes, all together) ...
INPUT_ORIGINS = 5  # ... cycling through this many origins (each within its limit)


def limit(seconds: float) -> int:
    """The most of one origin a conforming peer relays in ``seconds`` (with the slack)."""
    return int((BURST + RATE * seconds) * SLACK)


async def _flood(
    ctx: CaseContext,
    conn: Connection,
    sent: list[str],
    *,
    rate: float = FLOOD_RATE,
    total: int | None = None,
    drained: trio.Event | None = None,
    senders: Sequence[FakePeer] = (),
    seconds: float = FLOOD_FOR,
) -> None:
    """Write new messages of the origin (or of ``senders`` in turn) at ``rate`` until the
    peer closes ``conn``, ``total`` are written or ``seconds`` have passed; their IDs go into
    ``sent``.  ``drained`` is set once more than ``BURST`` have been written (the origin's
    budget is spent)."""
    start = trio.current_time()
    per_tick = int(rate * TICK)
    tick = 0
    while trio.current_time() - start < seconds and (total is None or len(sent) < total):
        first = len(sent)
        batch = [
            ctx.message(f"flood {n}", senders[n % len(senders)] if senders else None)
            for n in range(first, first + per_tick)
        ]
        if not await conn.send(b"".join(encode(m) for m in batch)):
            return
        sent.extend(m["ID"] for m in batch)
        if drained is not None and len(sent) > BURST + 100:
            drained.set()
        tick += 1
        await trio.sleep_until(start + tick * TICK)  # pacing


async def _retry(
    ctx: CaseContext, conn: Connection, sink: FakePeer, sender: FakePeer, what: str
) -> bool:
    """Write a message of ``sender`` on ``conn`` every ``RETRY`` until one reaches ``sink``
    (True) or the peer closes ``conn`` (False)."""
    sent: list[str] = []

    async def send() -> None:
        while await conn.send_obj(message := ctx.message(f"flood-control: {what}", sender)):
            sent.append(message["ID"])
            await trio.sleep(RETRY)

    async with ctx.background(send):
        await ctx.until(lambda: sink.got_any(sent) or conn.closed is not None, what)
    return sink.got_any(sent)


async def _probe(ctx: CaseContext, sink: FakePeer, sender: FakePeer, after: str) -> None:
    """A message of ``sender`` on a new connection reaches ``sink``; fails if the peer refuses
    or closes that connection instead."""
    conn = await ctx.connect(f"{sender.name}'s new connection")
    if not await _retry(ctx, conn, sink, sender, f"another origin on a new connection {after}"):
        raise CaseFailed(
            f"closed a new connection from 127.0.0.1 carrying another origin's message {after}"
            f" ({conn.closed}): a loopback address is shared by many peers and must not be"
            " blacklisted as a whole"
        )


def _count(sink: FakePeer, ids: list[str]) -> int:
    return sum(1 for i in ids if i in sink.by_id)


@case(
    "flood-control",
    "flood-contained",
    "§7.4",
    f"of {BLOCK:,} messages of one origin at {BLOCK_RATE:,.0f}/s, relays the first"
    f" {HONEST_BURST} and at most {BURST} + {RATE:g}/s; another origin is still relayed",
    fresh=True,
)
async def flood_contained(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    other = await ctx.fake("other")
    conn = await ctx.connect("flood")
    started = trio.current_time()
    flood: list[str] = []
    ctx.observer.step = f"writing {BLOCK:,} messages of one origin"
    await _flood(ctx, conn, flood, rate=BLOCK_RATE, total=BLOCK)
    if conn.closed is None:
        await _retry(ctx, conn, sink, other, "a marker after the flood, on its connection")
    await _probe(ctx, sink, other, "after the flood")
    seconds = trio.current_time() - started
    relayed, most = _count(sink, flood), limit(seconds)
    if relayed > most:
        raise CaseFailed(
            f"relayed {relayed} of {len(flood):,} messages of one origin; the limit allows at"
            f" most {most} in the {seconds:.1f}s measured"
        )
    missing = [i for i in flood[:HONEST_BURST] if i not in sink.by_id]
    if missing:
        raise CaseFailed(
            f"relayed only {HONEST_BURST - len(missing)} of the first {HONEST_BURST} messages"
            f" of the origin: a burst that size (a paste) must pass"
        )
    how = f"its connection was {conn.closed}" if conn.closed else "its connection stayed open"
    return f"relayed {relayed} of {len(flood):,} (at most {most} allowed); {how}"


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
    await _flood(ctx, conn, sent)
    seconds = trio.current_time() - started
    if conn.closed is None:
        await _retry(ctx, conn, sink, other, "a marker after the flood, on its connection")
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
    carried: list[dict[str, Any]] = []  # the flooded origin's, on the relay's connection
    chat: list[dict[str, Any]] = []  # other origins', on the relay's connection
    done, drained, finished = trio.Event(), trio.Event(), trio.Event()

    async def forward() -> None:
        """What a conforming relay may send: the origin's burst, then its rate; others'."""
        try:
            await relay_traffic()
        finally:
            finished.set()

    async def relay_traffic() -> None:
        await drained.wait()  # sent into the flood, when the origin's budget is spent
        batch = [ctx.message(f"relayed {i}") for i in range(BURST)]
        carried.extend(batch)
        await relay.send_obj(*batch)
        start, tick = trio.current_time(), 0
        while not done.is_set():
            tick += 1
            await trio.sleep_until(start + tick / RATE)  # pacing
            carried.append(ctx.message(f"relayed {len(carried)}"))
            chat.append(ctx.message(f"chat {tick}", others[tick % len(others)]))
            if not await relay.send_obj(carried[-1], chat[-1]):
                return

    async with ctx.background(forward):
        ctx.observer.step = f"flooding at {FLOOD_RATE:,.0f} messages/s beside a relay"
        await _flood(ctx, flood, flood_ids, drained=drained)
        drained.set()
        with trio.move_on_after(1.0):  # the relay goes on for a second after the flood
            while relay.closed is None:
                await ctx.observer.changed()
        done.set()
        with trio.move_on_after(RELAY_STOP):  # let it finish the write it is in: cancelling
            await finished.wait()  # a write halfway would leave half a message on the wire
    if relay.closed is None:
        await _retry(ctx, relay, sink, others[0], "a marker on the relay's connection")
    if relay.closed is not None:
        raise CaseFailed(
            f"closed the relay's connection ({relay.closed}) after it carried {len(carried)} of"
            f" the flooded origin's messages (within its limit) and {len(chat)} of others'"
        )
    relayed = sum(1 for m in chat if sink.got(m))
    cut = f"the flood's connection was {flood.closed}" if flood.closed else "the flood's was not"
    return (
        f"kept the relay's connection ({len(carried)} of the flooded origin's messages and"
        f" {len(chat)} of others', {relayed} of those relayed); {cut}"
    )


@case(
    "flood-control",
    "forged-addr",
    "§7.4",
    f"while {FORGERS} connections forge a sink's Addr at {FORGE_RATE:g}/s each, relays that"
    f" sink's own messages ({OWN_RATE:g}/s), and afterwards still relays to it: an Addr that"
    " messages merely claim spends no one's budget and puts no one on a blacklist",
    fresh=True,
)
async def forged_addr(ctx: CaseContext) -> str:
    victim, witness = await ctx.sinks(2)
    other = await ctx.fake("other")
    own = await ctx.connect(f"{victim.name}'s own")  # its link, opened before the flood
    floods = [await ctx.connect(f"forger {i + 1}") for i in range(FORGERS)]
    forged: list[list[str]] = [[] for _ in floods]
    said: list[str] = []  # the victim's own, relayed to the witness (never to the victim)

    async def speak() -> None:
        start, tick = trio.current_time(), 0
        while True:
            message = ctx.message(f"flood-control: {victim.name}'s own {tick}", victim)
            if not await own.send_obj(message):
                return
            said.append(message["ID"])
            tick += 1
            await trio.sleep_until(start + tick / OWN_RATE)  # pacing

    async with ctx.background(speak), trio.open_nursery() as nursery:
        ctx.observer.step = f"forging {victim.name}'s Addr on {FORGERS} connections"
        for flood, ids in zip(floods, forged, strict=True):
            flood_it = partial(_flood, ctx, flood, ids, rate=FORGE_RATE, total=FORGED)
            nursery.start_soon(partial(flood_it, senders=[victim], seconds=2 * FLOOD_FOR))
    if not await _retry(ctx, own, witness, other, f"a marker after {victim.name}'s own"):
        raise CaseFailed(
            f"closed {victim.name}'s own connection ({own.closed}) while other connections"
            " forged its Addr"
        )
    relayed = _count(witness, said)
    if relayed < len(said) - 1:
        raise CaseFailed(
            f"relayed only {relayed} of {victim.name}'s own {len(said)} messages while other"
            f" connections forged its Addr: their flood spent {victim.name}'s budget"
        )
    probe = await ctx.connect(f"{other.name}'s new connection")
    reached = False
    with trio.move_on_after(WITHIN):
        reached = await _retry(ctx, probe, victim, other, f"a message relayed to {victim.name}")
    if not reached:
        why = probe.closed or f"nothing arrived within {WITHIN:g}s"
        raise CaseFailed(
            f"stopped relaying to {victim.name} ({victim.addr}) after a flood of messages"
            f" claiming its Addr ({why}): an Addr that messages merely claim must not be"
            " blacklisted"
        )
    flood = [i for ids in forged for i in ids]
    return (
        f"relayed {relayed} of {victim.name}'s own {len(said)} messages during a flood of"
        f" {len(flood):,} forging its Addr ({_count(witness, flood)} of those relayed);"
        f" still relays to {victim.name}"
    )


@case(
    "flood-control",
    "relay-paced",
    "§7.4",
    f"of {INPUTS} connections' new messages ({INPUT_RATE:g}/s each, none over a limit),"
    f" sends one sink at most {LINK_BURST:,} at once and {LINK_RATE:g}/s after that: a"
    " receiver never has a reason to cut the peer off for what it relays",
    fresh=True,
)
async def relay_paced(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    origins = [await ctx.fake(f"origin{i + 1}") for i in range(INPUT_ORIGINS)]
    inputs = [await ctx.connect(f"input {i + 1}") for i in range(INPUTS)]
    brought: list[list[str]] = [[] for _ in inputs]
    started = trio.current_time()
    ctx.observer.step = f"bringing {INPUT_RATE * INPUTS:,.0f} new messages a second"
    async with trio.open_nursery() as nursery:
        for conn, ids in zip(inputs, brought, strict=True):
            flood_it = partial(_flood, ctx, conn, ids, rate=INPUT_RATE, total=INPUT_TOTAL)
            nursery.start_soon(partial(flood_it, senders=origins, seconds=2 * FLOOD_FOR))
    for i, conn in enumerate(inputs):
        if not await _retry(ctx, conn, sink, origins[0], f"a marker after input {i + 1}"):
            raise CaseFailed(
                f"closed input {i + 1} ({conn.closed}) while it brought {INPUT_RATE:g} new"
                " messages a second, within every limit"
            )
    seconds = trio.current_time() - started
    sent = [i for ids in brought for i in ids]
    relayed = _count(sink, sent)
    most = int((LINK_BURST + LINK_RATE * seconds) * SLACK)
    if relayed > most:
        raise CaseFailed(
            f"sent {sink.name} {relayed:,} of the {len(sent):,} new messages in"
            f" {seconds:.1f}s, more than a receiver's new connection accepts ({most:,}): a"
            " receiver would cut the peer off for relaying"
        )
    if relayed < LINK_BURST:
        raise CaseFailed(f"sent {sink.name} only {relayed:,} of {len(sent):,} new messages")
    return (
        f"sent {sink.name} {relayed:,} of {len(sent):,} new messages in {seconds:.1f}s (at most"
        f" {most:,} allowed)"
    )
