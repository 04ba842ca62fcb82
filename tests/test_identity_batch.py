"""Signatures checked in batches (``identity/batch.py``), in the engine and by the verifier.

The pure part (prepare, the request and its answer, the verdicts) and the engine fed a
chunk in two steps (``SimNet.write(..., batched=True)``); then a node over loopback TCP whose
verifier child checks a burst (``verifier.py``)."""

from __future__ import annotations

import pickle

import trio
import trio.testing

from whisper.engine.simnet import SimNet
from whisper.flood import FloodConfig
from whisper.identity import Identity, SigStatus, Trust, sign
from whisper.identity.batch import MIN_BATCH, Verification, answer, frame, prepare, unframe
from whisper.identity.stages import IdentityConfig
from whisper.verifier import Verifier

from .helpers import LOCAL, eof, linked, now_ms, origin, send, sink, start_node

BOB = "10.0.0.2:5"
ORIGIN = "10.0.0.9:5"
MALLORY = Identity.generate()


def signed(i: int, stamp: int, addr: str = ORIGIN) -> dict:
    fields = {"ID": f"m{i}", "Addr": addr, "Body": f"line {i}", "Nick": "mallory"}
    return sign(MALLORY, {**fields, "Timestamp": stamp})


def burst(n: int, stamp: int, addr: str = ORIGIN) -> list[dict]:
    return [signed(i, stamp, addr) for i in range(n)]


def test_prepare_takes_signed_unseen_messages_once_each_and_only_enough_of_them():
    msgs = burst(MIN_BATCH + 2, 1)
    unsigned = {"ID": "u", "Addr": ORIGIN, "Body": "go"}
    work = prepare([unsigned, *msgs, dict(msgs[0]), "junk", {"ID": ["x"], "Sig": 1}], {"m1"})
    assert work is not None
    assert [mid for mid, _ in work.waiting] == [m["ID"] for m in msgs if m["ID"] != "m1"]
    assert prepare(msgs[: MIN_BATCH - 1], set()) is None


def test_the_answer_is_the_key_or_why_not_and_a_tampered_one_fails():
    msgs = burst(4, 1)
    msgs[1] = {**msgs[1], "Body": "changed"}
    msgs[2] = {**msgs[2], "Sig": "not base64"}
    work = Verification(msgs)
    key, changed, malformed, other = pickle.loads(answer(work.payload))
    assert key == other == MALLORY.public
    assert changed == "the signature does not verify" and "Sig" in malformed
    verdicts = work.verdicts(answer(work.payload))
    assert [verdicts[m["ID"]][1].status for m in msgs] == [
        SigStatus.VALID,
        SigStatus.INVALID,
        SigStatus.INVALID,
        SigStatus.VALID,
    ]
    assert verdicts["m0"][1].key == MALLORY.public


def test_the_request_carries_only_what_verify_reads():
    msg = {**signed(0, 1), "BenchT": 5, "History": True}
    (fields,) = pickle.loads(Verification([msg]).payload)
    assert set(fields) == set(msg) - {"BenchT", "History"}


def test_without_a_well_formed_reply_every_message_is_checked_here():
    msgs = burst(2, 1)
    forged = {**msgs[0], "Body": "forged"}
    work = Verification([forged, msgs[1]])
    key = MALLORY.public
    for reply in (None, b"junk", pickle.dumps([key]), pickle.dumps([b"short", "x"])):
        verdicts = work.verdicts(reply)
        assert verdicts["m0"][1].status is SigStatus.INVALID
        assert verdicts["m1"][1].status is SigStatus.VALID
    # A well-formed reply is the verifier's word (it is our own child process).
    assert work.verdicts(pickle.dumps([key, key]))["m0"][1].status is SigStatus.VALID


def test_frames_come_off_a_buffer_whole_and_one_at_a_time():
    buffer = bytearray(frame(b"abc") + frame(b"") + frame(b"xyz")[:5])
    assert unframe(buffer) == b"abc"
    assert unframe(buffer) == b""
    assert unframe(buffer) is None
    buffer += frame(b"xyz")[5:]
    assert unframe(buffer) == b"xyz" and not buffer


def bob(net: SimNet, **changes):
    return net.add(BOB, nick="bob", identity=IdentityConfig(Identity.generate()), **changes)


def test_a_batched_chunk_is_relayed_in_order_without_its_tampered_copies():
    net = SimNet()
    b = bob(net)
    stamp = int(net.wall() * 1000)
    msgs = burst(40, stamp)
    tampered = [{**m, "Body": "evil"} for m in msgs[::10]]  # under the genuine IDs, first
    conn = net.raw(BOB)
    net.write(BOB, conn, *tampered, *msgs, batched=True)
    assert b.bodies == [m["Body"] for m in msgs]
    assert all(e.ident.trust is Trust.VERIFIED for e in b.delivered)
    checker = b.engine.identity.checker
    assert checker.batched == 40 and checker.invalid == len(tampered)
    assert b.engine.stats.invalid == len(tampered)
    assert not conn.prechecked  # nothing waits: the verdicts are gone


def test_a_batched_chunk_is_charged_by_flood_control():
    """The budget rules (PROTOCOL.md §7.4) apply to a batched chunk as to any: its bad
    signatures are penalty points, and enough of them cut the connection."""
    flood = FloodConfig(penalty_limit=5)
    net = SimNet()
    b = bob(net, flood=flood)
    stamp = int(net.wall() * 1000)
    bad = [{**m, "Body": "evil"} for m in burst(40, stamp)]
    conn = net.raw(BOB)
    net.write(BOB, conn, *bad, batched=True)
    assert conn.closed is not None and "invalid" in conn.closed
    assert b.bodies == []
    assert b.engine.blacklist(net.now)


async def test_a_burst_is_verified_by_the_child_and_relayed_in_order(nursery):
    ident = IdentityConfig(Identity.generate())
    node = await start_node(nursery, nick="bob", discovery=None, identity=ident)
    out = await sink(nursery)
    async with await origin(node) as stream:
        hello = {"ID": "hello", "Addr": out.addr, "Body": "hi", "Timestamp": now_ms()}
        await send(stream, hello)
        await linked(node, out.addr)
        msgs = burst(300, now_ms(), f"{LOCAL}:1")
        tampered = [{**m, "Body": "evil"} for m in msgs[::7]]
        await send(stream, *tampered, *msgs)
        lines = [m["Body"] for m in msgs]
        await out.wait_for(lambda s: lines[-1] in s.bodies)
    assert [b for b in out.bodies if b in lines or b == "evil"] == lines
    assert node.verifier is not None and node.verifier.batches >= 1
    assert node.engine.identity.checker.batched >= MIN_BATCH
    assert node.engine.identity.checker.invalid == len(tampered)
    await trio.testing.wait_all_tasks_blocked()
    assert node.verifier.queued.borrowed_tokens == 0  # every batch relayed gave its place back


async def test_a_paced_burst_is_verified_in_batches_and_relayed_whole_in_order(nursery):
    """Flood control (PROTOCOL.md §7.4) paces the connection (work tokens) and charges its
    budget while its batches are checked: everything within the budget is relayed, in order.
    The connection's work bucket starts with 80 tokens and refills 400 a second: 600
    messages are paced unless reading them takes the node more than 1.3 s (and one 64 KiB
    read holds about 250 of them: a single full read is paced on its own)."""
    ident = IdentityConfig(Identity.generate())
    flood = FloodConfig(conn_rate=100.0, conn_start=1000.0, origin_burst=1000.0)
    node = await start_node(nursery, nick="bob", discovery=None, identity=ident, flood=flood)
    out = await sink(nursery)
    async with await origin(node) as stream:
        hello = {"ID": "hello", "Addr": out.addr, "Body": "hi", "Timestamp": now_ms()}
        await send(stream, hello)
        await linked(node, out.addr)
        msgs = burst(600, now_ms(), f"{LOCAL}:1")
        await send(stream, *msgs)
        lines = [m["Body"] for m in msgs]
        await out.wait_for(lambda s: lines[-1] in s.bodies)
    assert [b for b in out.bodies if b in lines] == lines
    assert node.engine.stats.paced > 0 and node.engine.stats.over_limit == 0
    assert node.engine.identity.checker.batched >= MIN_BATCH


async def test_a_connection_dropped_with_batches_in_flight_gives_their_places_back(nursery):
    ident = IdentityConfig(Identity.generate())
    node = await start_node(nursery, nick="bob", discovery=None, identity=ident)
    async with await origin(node) as stream:
        more = [signed(i, now_ms(), f"{LOCAL}:1") for i in range(1000, 1400)]
        await send(stream, *more)
        await stream.send_all(b"{]")  # malformed: the connection is dropped
        assert await eof(stream)
    await trio.testing.wait_all_tasks_blocked()
    assert node.verifier is not None and node.verifier.queued.borrowed_tokens == 0


async def test_a_verifier_that_cannot_start_leaves_the_checks_to_the_node(nursery):
    verifier = Verifier(["/nonexistent/verifier"])
    nursery.start_soon(verifier.serve)
    work = Verification(burst(2, 1))
    for _ in verifier.children:  # each tries, and fails, in turn
        assert await verifier.check(work.request) is None
    assert verifier.broken
    assert await verifier.check(work.request) is None


async def test_the_verifier_answers_requests_in_the_order_they_were_sent(nursery):
    verifier = Verifier()
    nursery.start_soon(verifier.serve)
    good, bad = Verification(burst(3, 1)), Verification([{**signed(0, 1), "Body": "x"}])
    replies: dict[str, bytes | None] = {}

    async def ask(name: str, work: Verification) -> None:
        replies[name] = await verifier.check(work.request)

    async with trio.open_nursery() as asking:
        for i in range(3):
            asking.start_soon(ask, f"good{i}", good)
            asking.start_soon(ask, f"bad{i}", bad)
    keys, refused = [MALLORY.public] * 3, ["the signature does not verify"]
    assert {name: pickle.loads(reply) for name, reply in replies.items()} == {
        **{f"good{i}": keys for i in range(3)},
        **{f"bad{i}": refused for i in range(3)},
    }
    assert verifier.batches == 6 and not verifier.broken
