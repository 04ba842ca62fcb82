"""Codec benchmark: decode and encode rates, and memory one Decoder holds at the size cap.

What it measures (numbers only; nothing is asserted):

1. **Decode rate.**  ``--messages`` distinct ~150-byte chat messages (Go-style 16-hex IDs,
   ``Nick``/``omitempty``, millisecond ``Timestamp``) are concatenated as the node receives
   them and fed to a fresh ``whisper.codec.Decoder`` in 64 KiB chunks (``RECEIVE_BYTES``).
   Printed per round: msgs/s and MB/s.  For reference the same bytes are also pushed through
   the bare parser (``ijson.basic_parse_coro`` into a list, no object building), which is the
   floor the Decoder's Python builder sits on, and through ``Message.from_wire`` after
   decoding (what the node does next).
2. **Encode rate.**  ``codec.encode_object`` on the decoded dicts (what the node does once per
   relayed message): msgs/s and MB/s.
3. **Memory held by one connection mid-message at the cap** (``--memory``, on by default).
   For each input *shape* a message of just under ``DEFAULT_MAX_SIZE`` bytes is fed in 64 KiB
   chunks and never closed, so the Decoder holds the partial value as a hostile peer could
   make it.  Each shape runs in a fresh child process, twice: once under ``tracemalloc``
   (Python-heap bytes held after the last chunk, and the peak while feeding) and once without
   it (growth of the process RSS, which also counts the C parser's buffers that tracemalloc
   cannot see).  Rows are repeated for each ``--max-values`` setting; ``none`` means the value
   cap disabled, i.e. what the size cap alone would allow.  "refused@N" means the Decoder
   reported a violation after N input bytes (so it held that much at most); "held" means it
   still accepted the message when input ran out.

How to read it: the decode rate bounds how many messages per second one core can take in;
the memory table times ``node.MAX_INCOMING`` (128) is what a flood of hostile connections
could pin but for the receive budget (``node.RECEIVE_BUDGET``, 128 MiB for all of them,
charged at ``Decoder.held``; ``bench_attacks.py`` measures it on a real peer).
Run ``.venv/bin/python bench/bench_codec.py --help`` for options.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import ijson

from whisper import codec
from whisper.message import InvalidMessage, Message, NotChat

CHUNK = 64 * 1024
MiB = 1024 * 1024

# -- decode / encode rate ------------------------------------------------------------------


def make_messages(count: int, seed: int = 1) -> list[bytes]:
    """Distinct encoded chat messages of about 150 bytes each."""
    rng = random.Random(seed)
    words = [
        "lorem",
        "ipsum",
        "dolor",
        "sit",
        "amet",
        "consectetur",
        "adipiscing",
        "elit",
        "sed",
        "do",
        "eiusmod",
    ]
    stamp = int(time.time() * 1000)
    out = []
    for i in range(count):
        body = " ".join(rng.choice(words) for _ in range(6))[:40]
        obj = {
            "ID": f"{rng.getrandbits(64):016x}",
            "Addr": "127.0.0.1:55555",
            "Body": body,
            "Nick": "bench",
            "omitempty": "bench",
            "Timestamp": stamp + i,
        }
        out.append(codec.encode_object(obj))
    return out


def chunked(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def time_decode(chunks: list[bytes]) -> tuple[float, list[Any]]:
    decoder = codec.Decoder()
    out: list[Any] = []
    start = time.perf_counter()
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    elapsed = time.perf_counter() - start
    return elapsed, out


def time_bare_parser(chunks: list[bytes]) -> float:
    target = ijson.utils.sendable_list()
    coro = ijson.basic_parse_coro(target, multiple_values=True, use_float=True)
    start = time.perf_counter()
    for chunk in chunks:
        coro.send(chunk)
        del target[:]
    return time.perf_counter() - start


def time_from_wire(objs: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    for obj in objs:
        with contextlib.suppress(NotChat, InvalidMessage):
            Message.from_wire(obj)
    return time.perf_counter() - start


def time_encode(objs: list[dict[str, Any]]) -> tuple[float, int]:
    encode = codec.encode_object
    start = time.perf_counter()
    total = 0
    for obj in objs:
        total += len(encode(obj))
    return time.perf_counter() - start, total


def run_rates(count: int, rounds: int) -> None:
    messages = make_messages(count)
    data = b"".join(messages)
    chunks = chunked(data)
    mb = len(data) / 1e6
    print(
        f"codec backend: {codec.BACKEND}; ijson {ijson.__version__}; "
        f"Python {sys.version.split()[0]}"
    )
    print(
        f"{count} messages, mean {len(data) / count:.1f} bytes, {mb:.1f} MB, "
        f"{len(chunks)} chunks of {CHUNK // 1024} KiB"
    )
    print()
    print(f"{'round':>5}  {'what':<26} {'msgs/s':>10} {'MB/s':>8} {'us/msg':>8}")
    results: dict[str, list[float]] = {}

    def row(r: int, what: str, seconds: float, nbytes: float) -> None:
        rate = count / seconds
        results.setdefault(what, []).append(rate)
        print(
            f"{r:>5}  {what:<26} {rate:>10,.0f} {nbytes / seconds / 1e6:>8.1f} {1e6 / rate:>8.2f}"
        )

    for r in range(1, rounds + 1):
        seconds, out = time_decode(chunks)
        if len(out) != count or any(isinstance(o, codec.Violation) for o in out):
            raise SystemExit(f"decoder returned {len(out)} items for {count} messages")
        row(r, "Decoder.feed", seconds, len(data))
        row(r, "bare ijson parse (floor)", time_bare_parser(chunks), len(data))
        row(r, "Message.from_wire", time_from_wire(out), len(data))
        enc_seconds, enc_bytes = time_encode(out)
        row(r, "encode_object", enc_seconds, enc_bytes)
    print()
    print("summary (median [min-max] over rounds):")
    for what, rates in results.items():
        print(
            f"  {what:<26} {statistics.median(rates):>10,.0f} msgs/s "
            f"[{min(rates):,.0f}-{max(rates):,.0f}]"
        )


# -- memory at the cap ---------------------------------------------------------------------


def _repeat(prefix: str, unit: str, limit: int) -> bytes:
    """``prefix`` followed by as many ``unit`` as fit in ``limit`` bytes (never closed)."""
    n = (limit - len(prefix)) // len(unit)
    return (prefix + unit * n).encode()


def _dict_chains_then_string(limit: int) -> bytes:
    """As many depth-32 dict chains as the default value cap allows, then an open string.

    A chain is 31 JSON values; the Decoder currently counts a container's start and end
    events, i.e. 61 per chain, so that is the divisor that keeps the message legal.
    """
    chain = '{"a":' * 30 + "0" + "}" * 30 + ","
    head = '{"a":[' + chain * ((codec.DEFAULT_MAX_VALUES - 8) // 61) + '"'
    return _repeat(head, "x", limit)


#: name -> builder of a never-closed message of at most ``limit`` bytes.
SHAPES: dict[str, Callable[[int], bytes]] = {
    "1MiB string (Body)": lambda n: _repeat('{"Body":"', "x", n),
    "1MiB key": lambda n: _repeat('{"', "k", n),
    "[{},{},...]": lambda n: _repeat('{"a":[', "{},", n),
    "[1,1,1,...]": lambda n: _repeat('{"a":[', "1,", n),
    "[1.5,1.5,...] floats": lambda n: _repeat('{"a":[', "1.5,", n),
    '["<61 chars>",...]': lambda n: _repeat('{"a":[', '"' + "s" * 61 + '",', n),
    '[{"k":1},...]': lambda n: _repeat('{"a":[', '{"k":1},', n),
    "many keys {k0:0,...}": lambda n: _unique_keys(n),
    "list chains, depth 32": lambda n: _repeat('{"a":[', "[" * 30 + "]" * 30 + ",", n),
    "dict chains, depth 32": lambda n: _repeat('{"a":[', '{"a":' * 30 + "0" + "}" * 30 + ",", n),
    "dict chains+open string": _dict_chains_then_string,
}


def _unique_keys(limit: int) -> bytes:
    parts = ["{"]
    size = 1
    i = 0
    while True:
        item = f'"k{i}":0,'
        if size + len(item) > limit:
            break
        parts.append(item)
        size += len(item)
        i += 1
    return "".join(parts).encode()


def _vmrss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def memory_child(shape: str, max_values: int, mode: str) -> dict[str, Any]:
    """Feed one shape to one Decoder; return what it held (runs in a fresh process)."""
    data = SHAPES[shape](codec.DEFAULT_MAX_SIZE - 64)
    chunks = chunked(data)
    # Warm up the parser and allocator so the baseline includes their fixed cost.
    codec.decode_all(b'{"ID":"x","Addr":"y","Body":"z"}')
    if mode == "trace":
        import tracemalloc

        tracemalloc.start()
        measure: Callable[[], int] = lambda: tracemalloc.get_traced_memory()[0]  # noqa: E731
    else:
        measure = lambda: _vmrss_kib() * 1024  # noqa: E731
    base = measure()
    decoder = codec.Decoder(max_values=max_values)
    fed = 0
    held = 0
    peak_seen = 0
    refused = ""
    for chunk in chunks:
        out = decoder.feed(chunk)
        fed += len(chunk)
        held = measure() - base
        peak_seen = max(peak_seen, held)
        if out:
            refused = out[-1].reason if isinstance(out[-1], codec.Violation) else "completed?!"
            break
    peak = tracemalloc.get_traced_memory()[1] - base if mode == "trace" else peak_seen
    return {
        "shape": shape,
        "input": len(data),
        "fed": fed,
        "held": held,
        "peak": peak,
        "refused": refused,
        "alive": decoder.in_message and not refused,
    }


def run_memory(max_values_list: list[int | None]) -> None:
    print()
    print(
        f"memory held by ONE Decoder mid-message, input just under the "
        f"{codec.DEFAULT_MAX_SIZE // 1024} KiB cap, fed in {CHUNK // 1024} KiB chunks"
    )
    print(
        f"(max_depth={codec.DEFAULT_MAX_DEPTH}; heap held = tracemalloc bytes still held after "
        "the last chunk; heap peak = tracemalloc peak while feeding; RSS peak = growth of the "
        "process RSS, which includes the C parser's buffers)"
    )
    header = (
        f"{'shape':<24} {'max_values':>10} {'heap held':>10} {'heap peak':>10} "
        f"{'RSS peak':>10}  outcome"
    )
    print(header)
    print("-" * len(header))
    for max_values in max_values_list:
        mv = max_values if max_values is not None else 10**12
        for shape in SHAPES:
            trace = _child(shape, mv, "trace")
            rss = _child(shape, mv, "rss")
            outcome = (
                f"refused@{trace['fed'] // 1024}KiB: {trace['refused'][:48]}"
                if trace["refused"]
                else f"held {trace['fed'] // 1024} KiB, still open"
            )
            label = "none" if max_values is None else str(max_values)
            print(
                f"{shape:<24} {label:>10} {_mib(trace['held']):>10} {_mib(trace['peak']):>10} "
                f"{_mib(rss['peak']):>10}  {outcome}"
            )


def _mib(n: int) -> str:
    return f"{n / MiB:.2f}M"


def _child(shape: str, max_values: int, mode: str) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            os.path.abspath(__file__),
            "--_memory-child",
            shape,
            str(max_values),
            mode,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)


def main() -> None:
    p = argparse.ArgumentParser(
        description="Decode/encode rate of whisper.codec and memory one Decoder holds at the cap."
    )
    p.add_argument("--messages", type=int, default=200_000, help="messages per round (200000)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds (3)")
    p.add_argument("--no-memory", action="store_true", help="skip the memory-at-cap table")
    p.add_argument(
        "--max-values",
        default=f"{codec.DEFAULT_MAX_VALUES},4096,none",
        help="comma-separated max_values settings for the memory table; 'none' = no value cap "
        f"(default {codec.DEFAULT_MAX_VALUES},4096,none)",
    )
    p.add_argument("--_memory-child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._memory_child:
        shape, mv, mode = args._memory_child
        print(json.dumps(memory_child(shape, int(mv), mode)))
        return
    run_rates(args.messages, args.rounds)
    if not args.no_memory:
        mvs = [None if v.strip() == "none" else int(v) for v in args.max_values.split(",")]
        run_memory(mvs)


if __name__ == "__main__":
    main()
