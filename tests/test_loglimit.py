"""Repeated log lines are rate-limited per log call (loglimit.py), with a count of the rest."""

from __future__ import annotations

import contextlib
import logging

import trio

from whisper.codec import encode_object
from whisper.loglimit import BURST, RATE, RepeatLimit

from .helpers import LOCAL, wire
from .proc import Whisper

TIMEOUT = 60
CONNECTIONS = 1000
AT_ONCE = 50


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(msg: str, *args: object, line: int = 10, path: str = "whisper/node.py"):
    return logging.LogRecord("whisper.node", logging.WARNING, path, line, msg, args, None)


def passed(limit: RepeatLimit, records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if limit.filter(r)]


def test_a_burst_then_a_line_a_second_with_a_count_of_the_rest() -> None:
    clock = Clock()
    limit = RepeatLimit(burst=3, rate=1.0, clock=clock)
    flood = [record("dropped %s: malformed JSON", f"10.0.0.1:{i}") for i in range(1000)]
    assert passed(limit, flood) == [f"dropped 10.0.0.1:{i}: malformed JSON" for i in range(3)]
    clock.now = 1.0
    assert passed(limit, [record("dropped %s: malformed JSON", "10.0.0.2:1")] * 2) == [
        "dropped 10.0.0.2:1: malformed JSON (suppressed 997 similar lines)"
    ]
    clock.now = 2.0
    assert passed(limit, [record("dropped %s: malformed JSON", "10.0.0.3:1")]) == [
        "dropped 10.0.0.3:1: malformed JSON (suppressed 1 similar lines)"
    ]
    clock.now = 3.0
    assert passed(limit, [record("dropped %s", "x")]) == ["dropped x"]  # nothing to count


def test_each_log_call_has_its_own_limit() -> None:
    limit = RepeatLimit(burst=1, rate=1.0, clock=Clock())
    lines = [record("a %d", 1), record("a %d", 2), record("b", line=11), record("c", path="x.py")]
    assert passed(limit, lines) == ["a 1", "b", "c"]


def test_a_broken_format_is_left_to_the_handler() -> None:
    clock = Clock()
    limit = RepeatLimit(burst=1, rate=1.0, clock=clock)
    assert limit.filter(record("%d", 1)) and not limit.filter(record("%d", 2))
    clock.now = 1.0
    broken = record("%d %d", 1)
    assert limit.filter(broken) and broken.msg == "%d %d"  # unchanged: logging reports it
    clock.now = 2.0
    assert passed(limit, [record("%d", 3)]) == ["3 (suppressed 1 similar lines)"]


async def test_the_command_line_writes_bounded_stderr_under_a_flood_of_bad_input(nursery):
    """1,000 connections, each with an invalid message and then malformed JSON: two log lines
    each unlimited (38 MB of stderr in 150 s); now each log call's burst, then one a second."""
    peer = await Whisper("-host", LOCAL, "-port", "0", "-headless", "-no-discovery").start(nursery)
    host, port = peer.addr.rsplit(":", 1)
    invalid = encode_object(wire("bad", Timestamp="not a number"))

    async def bad_connection() -> None:
        async with await trio.open_tcp_stream(host, int(port)) as conn:
            await conn.send_all(invalid + b"{malformed")
            with contextlib.suppress(trio.BrokenResourceError):
                while await conn.receive_some(1024):  # until the peer drops the connection
                    pass

    with trio.fail_after(TIMEOUT):
        started = trio.current_time()
        for _ in range(CONNECTIONS // AT_ONCE):
            async with trio.open_nursery() as batch:
                for _ in range(AT_ONCE):
                    batch.start_soon(bad_connection)
        seconds = trio.current_time() - started
        await peer.stop()
        await peer.wait_line("stderr", "SIGTERM: closing connections")
    most = BURST + RATE * seconds + 1
    for words in ("malformed JSON", "ignored a message from"):
        lines = [line for line in peer.stderr if words in line]
        assert 0 < len(lines) <= most, (words, len(lines), seconds)
    assert sum(map(len, peer.stderr)) < 400 * most  # the whole of stderr, not just those
