"""readers.py: one task reading many sockets; when a watch ends, and that its socket leaves."""

from __future__ import annotations

import socket

import trio
import trio.testing

from whisper.readers import Readers


def _pair() -> tuple[socket.socket, socket.socket]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    return ours, theirs


async def test_one_wake_up_reads_every_ready_socket(nursery) -> None:
    readers = Readers()
    nursery.start_soon(readers.run)
    pairs = [_pair() for _ in range(3)]
    got: dict[int, list[bytes]] = {i: [] for i in range(3)}
    ended: dict[int, bool] = {}

    async def watch(i: int) -> None:
        ended[i] = await readers.watch(pairs[i][0].fileno(), lambda d: got[i].append(d) or True)

    for i in range(3):
        nursery.start_soon(watch, i)
    await trio.testing.wait_all_tasks_blocked()
    for i, (_, theirs) in enumerate(pairs):
        theirs.send(b"copy %d\n" % i)
    await trio.testing.wait_all_tasks_blocked()
    assert got == {0: [b"copy 0\n"], 1: [b"copy 1\n"], 2: [b"copy 2\n"]}
    pairs[1][1].close()  # EOF: on_data(b"") once, and the watch ends, False
    await trio.testing.wait_all_tasks_blocked()
    assert got[1] == [b"copy 1\n", b""] and ended == {1: False}
    nursery.cancel_scope.cancel()  # the other watches end (and leave the set) first
    await trio.testing.wait_all_tasks_blocked()
    for ours, theirs in pairs:
        ours.close()
        theirs.close()
    readers.close()


async def test_a_watch_ends_when_on_data_says_stop_and_its_socket_leaves(nursery) -> None:
    readers = Readers()
    nursery.start_soon(readers.run)
    ours, theirs = _pair()
    seen: list[bytes] = []
    theirs.send(b"one\n")
    assert await readers.watch(ours.fileno(), lambda d: seen.append(d) and False) is True
    assert seen == [b"one\n"]
    theirs.send(b"two\n")  # not read: nobody watches it
    await trio.testing.wait_all_tasks_blocked()
    assert seen == [b"one\n"]
    assert await readers.watch(ours.fileno(), lambda d: seen.append(d) and False) is True
    assert seen == [b"one\n", b"two\n"]
    with trio.move_on_after(0) as scope:  # a cancelled watch leaves the set too
        await readers.watch(ours.fileno(), seen.append)
    assert scope.cancelled_caught
    theirs.send(b"three\n")
    await trio.testing.wait_all_tasks_blocked()
    assert seen == [b"one\n", b"two\n"]  # not read once its watch is gone
    assert await readers.watch(ours.fileno(), lambda d: seen.append(d) and False) is True
    assert seen == [b"one\n", b"two\n", b"three\n"]
    ours.close()
    theirs.close()
    readers.close()
