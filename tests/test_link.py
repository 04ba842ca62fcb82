"""link.py: the write-through of ``wake`` and the hand-over of what the kernel did not take."""

from __future__ import annotations

import socket

import trio
import trio.testing

from whisper.link import OutgoingLink
from whisper.peers import Peer, State


class Host:
    """The node's side of a link (``LinkHost``): a queue of batches to hand out."""

    def __init__(self) -> None:
        self.queue: list[bytes] = []
        self.connected = trio.Event()

    def link_connected(self, link: Peer, caps: frozenset[str] = frozenset()) -> None:
        self.connected.set()

    def link_speaks(self, link: Peer, caps: frozenset[str]) -> None:
        pass

    def data_to_send(self, link: Peer) -> bytes:
        return self.queue.pop(0) if self.queue else b""

    def link_failed(self, link: Peer, error: str, *, stalled: bool) -> None:
        pass

    def link_redial(self, link: Peer) -> None:
        pass


async def _linked(nursery: trio.Nursery) -> tuple[OutgoingLink, Host, socket.socket]:
    listener = socket.create_server(("127.0.0.1", 0))
    host = Host()
    addr = f"127.0.0.1:{listener.getsockname()[1]}"
    link = OutgoingLink(Peer(addr, True, State.CONNECTING, 0.0), host)
    nursery.start_soon(link.run)
    await host.connected.wait()
    theirs, _ = listener.accept()  # blocking: the connection is made already
    listener.close()
    await trio.testing.wait_all_tasks_blocked()  # the link's task is asleep, waiting
    return link, host, theirs


async def test_wake_writes_at_once_without_running_the_task(nursery) -> None:
    link, host, theirs = await _linked(nursery)
    host.queue += [b'{"ID":"1"}\n', b'{"ID":"2"}\n']
    link.wake()  # no checkpoint follows: the task cannot have run
    theirs.settimeout(5)
    got = b""
    while len(got) < 22:
        got += theirs.recv(100)
    assert got == b'{"ID":"1"}\n{"ID":"2"}\n'
    assert link.batches_sent == 2 and not link.busy
    theirs.close()


async def test_what_the_kernel_does_not_take_is_written_by_the_task_in_order(nursery) -> None:
    link, host, theirs = await _linked(nursery)
    big = bytes(range(256)) * (32 * 1024)  # 8 MiB: more than the socket buffers hold
    host.queue += [big, b"after\n"]
    link.wake()
    assert link.busy  # the rest went to the task, woken
    theirs.setblocking(False)
    got = bytearray()
    with trio.fail_after(10):
        while len(got) < len(big) + 6:
            await trio.lowlevel.wait_readable(theirs)
            got += theirs.recv(1 << 20)
    assert bytes(got) == big + b"after\n"
    theirs.close()
