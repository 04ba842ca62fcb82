"""How the node reads incoming connections (``node.py``, ``verifier.py``) over loopback."""

from __future__ import annotations

import trio

from whisper.flood import FloodConfig

from .helpers import inbox, origin, send, start_node, wire

TIMEOUT = 20
HELD = 1_000  # more than the 400 objects a new connection is read at once (PROTOCOL.md §7.4)


async def test_what_a_paced_connection_sent_before_its_eof_is_all_handled(
    nursery, autojump_clock
) -> None:
    us = await start_node(nursery, flood=FloodConfig(), discovery=None)
    box = await inbox(nursery, us)
    stream = await origin(us)
    # 20 origins (not addresses: nothing is dialled), 50 each: within every budget
    await send(stream, *[wire(f"m{i}", addr=f"origin-{i % 20}") for i in range(HELD)])
    await stream.send_eof()  # the node has read at most 400 of them when it sees the EOF
    with trio.fail_after(TIMEOUT):
        await box.wait_for(lambda got: len(got) == HELD)
    assert sorted(box.bodies) == sorted(f"m{i}" for i in range(HELD))
