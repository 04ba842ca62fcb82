"""Engine benchmark: the relay pipeline alone, without sockets, trio or a front end.

What it measures (numbers only; nothing is asserted): one engine with ``--links`` connected
outgoing links (the sinks) and one more to the messages' origin, as in ``bench_relay.py``,
is fed ``--messages`` new ~150-byte messages (as that bench writes them: unique IDs, a
Timestamp, an extra key, the origin's ``Addr``) in 64 KiB chunks, as one incoming
connection would deliver them; after each chunk every link's bytes are taken (what its
task would write).  Printed: microseconds of CPU per relayed message for decoding alone, and for the
whole engine (decode, checks, seen, encode, backlog, events, routing, queues).  The
difference from ``bench_relay.py``'s "peer CPU per message" is the trio shell, the sockets
and the headless front end.  ``--profile`` prints the top of a cProfile run instead.
``--signed`` also runs the engine with identities on (extension 13), fed the same messages
unsigned and then signed (``Key``, ``Sig``: each verified once, signed ahead, not timed),
and signed again with each chunk's signatures checked in a batch (``identity/batch.py``),
counting only the event loop's part, as in a node whose verifier child does the checks.
Run ``.venv/bin/python bench/bench_engine.py --help`` for options.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import secrets
import time
from typing import Any

from whisper.codec import Decoder
from whisper.config import Config
from whisper.engine import Dial, Engine, Incoming
from whisper.identity import Identity, sign
from whisper.identity.batch import answer
from whisper.identity.stages import IdentityConfig

CHUNK = 64 * 1024
WALL = 1_800_000_000.0
ORIGIN = "10.0.3.1:5"  # the messages' Addr: a link the engine never writes them to


def messages(n: int, origin: str) -> bytes:
    prefix, stamp = secrets.token_hex(4), int(WALL * 1000)
    return "".join(
        f'{{"ID":"{prefix}{i:08x}","Addr":"{origin}","Body":"lazy dog jumps over #{i}",'
        f'"Nick":"src","Timestamp":{stamp},"BenchT":{i}}}\n'
        for i in range(n)
    ).encode()


def signed_messages(n: int, origin: str) -> bytes:
    signer, prefix, stamp = Identity.generate(), secrets.token_hex(4), int(WALL * 1000)
    out = []
    for i in range(n):
        fields = {"ID": f"{prefix}{i:08x}", "Addr": origin, "Body": f"lazy dog jumps over #{i}"}
        fields.update(Nick="src", Timestamp=stamp)
        wire = {**sign(signer, fields), "BenchT": i}
        out.append(json.dumps(wire, separators=(",", ":")))
    return ("\n".join(out) + "\n").encode()


def chunks(data: bytes) -> list[bytes]:
    return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]


def decode_only(data: bytes) -> float:
    decoder = Decoder()
    start = time.process_time()
    for chunk in chunks(data):
        decoder.feed(chunk)
    return time.process_time() - start


def relaying_engine(
    links: int, identity: IdentityConfig | None = None
) -> tuple[Engine, list[Any], Incoming]:
    """An engine linked to the origin and ``links`` sinks, and an incoming connection."""
    engine = Engine(
        Config(host="10.0.0.1", discovery=None, wall_clock=lambda: WALL, identity=identity)
    )
    engine.start("10.0.0.1:5", 0.0)
    dialled = []
    for addr in [ORIGIN, *(f"10.0.1.{i + 1}:5" for i in range(links))]:
        _, actions = engine.connect(addr, 0.0)
        dialled += [a.link for a in actions if type(a) is Dial]
    for link in dialled:
        engine.link_connected(link, 0.0)
    conn, _ = engine.open_incoming("10.0.2.1:4000", 0.0)
    assert not isinstance(conn, str)
    return engine, dialled, conn


def engine_run(data: bytes, links: int, *, identity: bool = False, batched: bool = False) -> float:
    """CPU seconds for the engine to relay ``data`` to ``links`` sinks (origin ORIGIN).
    ``batched``: each chunk's signatures checked in a batch, as the node's verifier child
    does (``verifier.py``); the child's work (``batch.answer``) is not counted."""
    ident = IdentityConfig(Identity.generate()) if identity else None
    engine, dialled, conn = relaying_engine(links, ident)
    pieces = chunks(data)
    checker = engine.identity.checker if engine.identity is not None else None
    elsewhere = 0.0
    start = time.process_time()
    for i, chunk in enumerate(pieces):
        if batched and checker is not None:
            items, _ = engine.decode(conn, chunk, i * 0.001)
            work = checker.prepare(items, engine.seen)
            if work is not None:
                child = time.process_time()
                reply = answer(work.payload)
                elsewhere += time.process_time() - child
                checker.accept(conn, work, reply)
            engine.receive_items(conn, items, i * 0.001)
        else:
            engine.receive_data(conn, chunk, i * 0.001)
        for link in dialled:
            while engine.data_to_send(link):
                pass
    return time.process_time() - start - elsewhere


def main() -> None:
    p = argparse.ArgumentParser(description="CPU per message of the relay engine alone.")
    p.add_argument("--messages", type=int, default=200_000, help="messages fed (200000)")
    p.add_argument("--links", type=int, default=4, help="connected outgoing links (4)")
    p.add_argument("--profile", action="store_true", help="print a cProfile summary")
    p.add_argument("--signed", action="store_true", help="also identities on: unsigned, signed")
    args = p.parse_args()
    data = messages(args.messages, ORIGIN)
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        engine_run(data, args.links)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(18)
        return
    per = 1e6 / args.messages
    size = len(data) / args.messages
    print(f"{args.messages:,} messages of {size:.0f} bytes, {args.links} links + the origin's")
    print(f"decode only          {decode_only(data) * per:6.2f} us/msg")
    print(f"engine, whole relay  {engine_run(data, args.links) * per:6.2f} us/msg")
    if args.signed:
        on = engine_run(data, args.links, identity=True)
        print(f"identities on        {on * per:6.2f} us/msg (unsigned messages)")
        signed = signed_messages(args.messages, ORIGIN)
        print(f"  signed messages of {len(signed) / args.messages:.0f} bytes")
        taken = engine_run(signed, args.links, identity=True)
        print(f"identities on        {taken * per:6.2f} us/msg (signed: each verified)")
        loop = engine_run(signed, args.links, identity=True, batched=True)
        print(f"  verified in batches {loop * per:6.2f} us/msg on the event loop (the rest")
        print("                      is the verifier child's: bench_relay.py measures it)")


if __name__ == "__main__":
    main()
