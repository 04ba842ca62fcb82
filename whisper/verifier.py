"""Signatures checked off the event loop: a child process, and the read loop that feeds it.

Rules (why a process and not a thread, and the request format: ``identity/batch.py``):
- Up to ``CHILDREN`` children per node (``Verifier``; a batch goes to the one with the
  fewest waiting), each started when a batch first needs it, so a peer that never gets a
  burst of signed traffic starts none: ``VERIFIER`` (this module run as a script) reads
  request frames on its stdin and writes one reply frame for each, in order, on its stdout,
  ignores SIGINT (the terminal's ^C is the node's) and exits at EOF.  The children are
  killed when the node stops (``Verifier.serve``).
- ``Verifier.check`` sends its request (under a lock, shielded from cancellation: a
  half-written frame would misalign every later one) and waits for its reply, which the
  ``serve`` task hands out in the order the requests went: so the child always has the next
  batch waiting.  A reply not back within ``CHECK_TIMEOUT`` gives up on the child.  If the
  child cannot start, dies or times out, ``check`` returns None from then on and the
  caller checks inline: slower, never wrong (``Verification.verdicts``).
- ``read_checked`` is a connection's read loop when identities are on.  The reader task
  decodes chunk k+1 and sends its batch off while chunk k waits for its verdicts or is
  relayed; a second task hands the chunks to the pipeline, in the order they were read,
  each once its batch is back (``SignatureCheck.accept``).  A chunk with nothing to verify
  off the loop (one message, not a burst) while no chunk of its connection is ahead of it
  is relayed by the reader itself: no hand-over to the other task, which cost each such
  chunk two task switches.  At most ``AHEAD`` chunks of a
  connection are read and not yet relayed (the channel's buffer and the two tasks), and at
  most ``QUEUED`` batches of all connections together (one more chunk each may wait for
  room): what verifying holds in memory stays bounded however many connections send.  Flood
  control's pacing works as in ``node.py``'s loop: the pipeline charges every object, the
  next chunk waits until ``conn.resume_at``, and the reader reads nothing more until then.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Callable

import trio

from .engine import Engine, Incoming
from .engine.actions import Action
from .identity.batch import Verification, answer, frame, unframe
from .identity.stages import SignatureCheck

VERIFIER = [sys.executable, "-m", "whisper.verifier"]
CHECK_TIMEOUT = 30.0  # seconds for one batch's reply (a batch is about 10 ms of work)
CHILD_READ = 1 << 20
AHEAD = 8  # chunks of one connection read and not yet relayed, at most
QUEUED = 16  # batches of all connections read and not yet relayed, at most
CHILDREN = 2  # verifier processes at most (each started when a batch first needs it)

log = logging.getLogger("whisper.verifier")


class _Waiter:
    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.reply: bytes | None = None
        self.done = trio.Event()


class Verifier:
    """The children that check batches (``children`` of them, each started when first
    needed); a batch goes to the one with the fewest waiting."""

    def __init__(self, command: list[str] | None = None, children: int = CHILDREN) -> None:
        self.children = [_Child(command or VERIFIER) for _ in range(max(1, children))]
        #: Batches read and not yet relayed, all connections together (``QUEUED``).
        self.queued = trio.CapacityLimiter(QUEUED)

    @property
    def broken(self) -> bool:
        return all(child.broken for child in self.children)

    @property
    def batches(self) -> int:
        return sum(child.batches for child in self.children)

    async def serve(self) -> None:
        """Run the children's ``serve``; they are killed when this is cancelled."""
        async with trio.open_nursery() as nursery:
            for child in self.children:
                nursery.start_soon(child.serve)

    async def check(self, request: bytes) -> bytes | None:
        """The reply to one framed request, or None (the caller then checks inline)."""
        working = [child for child in self.children if not child.broken]
        if not working:
            return None
        return await min(working, key=_Child.load).check(request)


class _Child:
    def __init__(self, command: list[str]) -> None:
        self.command = command
        self._process: trio.Process | None = None
        self._wanted = trio.Event()  # the first check asks for the child
        self._ready = trio.Event()  # started, or given up on
        self._send_lock = trio.Lock()
        self._waiting: deque[_Waiter] = deque()  # sent, in order, their replies due
        self.broken = False
        self.batches = 0

    def load(self) -> int:
        return len(self._waiting) + (not self._ready.is_set())

    async def serve(self) -> None:
        """Start the child when first needed, read its replies; kill it when cancelled."""
        try:
            await self._wanted.wait()
            try:
                self._process = await trio.lowlevel.open_process(
                    self.command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
            except OSError as exc:
                self._fail(f"it cannot start: {exc}")
                return
            log.debug("started the signature verifier, pid %d", self._process.pid)
            self._ready.set()
            await self._read_replies(self._process)
        finally:
            self._fail("")
            if (process := self._process) is not None:
                with trio.CancelScope(shield=True):  # killed: close its pipes, reap it
                    for pipe in (process.stdin, process.stdout):
                        if pipe is not None:
                            await pipe.aclose()
                    await process.wait()

    async def check(self, request: bytes) -> bytes | None:
        """The reply to one framed request, or None (the caller then checks inline)."""
        self._wanted.set()
        await self._ready.wait()
        if self.broken:
            return None
        process = self._process
        assert process is not None and process.stdin is not None
        waiter = _Waiter()
        async with self._send_lock:
            self._waiting.append(waiter)
            with trio.CancelScope(shield=True):
                try:
                    await process.stdin.send_all(request)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    self._fail(f"it failed: {exc}")
        with trio.move_on_after(CHECK_TIMEOUT):
            await waiter.done.wait()
        if not waiter.done.is_set():
            self._fail(f"it did not answer within {CHECK_TIMEOUT:.0f} s")
        if waiter.reply is not None:
            self.batches += 1
        return waiter.reply

    async def _read_replies(self, process: trio.Process) -> None:
        assert process.stdout is not None
        buffer = bytearray()
        while data := await process.stdout.receive_some(CHILD_READ):
            buffer += data
            while (reply := unframe(buffer)) is not None and self._waiting:
                waiter = self._waiting.popleft()
                waiter.reply = reply
                waiter.done.set()
        self._fail("it exited")

    def _fail(self, why: str) -> None:
        """Give up on the child (``why`` logged, if any): every check is done inline."""
        if why and not self.broken:
            log.warning("signature verifier: %s; checking signatures on the event loop", why)
        self.broken = True
        self._ready.set()
        while self._waiting:
            self._waiting.popleft().done.set()
        if self._process is not None and self._process.returncode is None:
            self._process.kill()


class _Batch:
    """One chunk's batch on its way to the verifier and back."""

    __slots__ = ("done", "reply", "work")

    def __init__(self, work: Verification) -> None:
        self.work = work
        self.reply: bytes | None = None
        self.done = trio.Event()

    async def run(self, verifier: Verifier) -> None:
        try:
            self.reply = await verifier.check(self.work.request)
        finally:
            self.done.set()


async def read_checked(
    stream: trio.abc.ReceiveStream,
    conn: Incoming,
    engine: Engine,
    checker: SignatureCheck,
    verifier: Verifier,
    apply: Callable[[list[Action]], None],
    receive_bytes: int,
) -> None:
    """Read ``conn`` (``receive_bytes`` at a time) until EOF or it is closed; its signed
    messages checked in batches."""
    send, receive = trio.open_memory_channel[tuple[list, _Batch | None]](AHEAD - 1)
    queued, held = verifier.queued, set[_Batch]()  # the node's batches waiting, ours of them
    ahead = [0]  # chunks handed to the relaying task and not yet relayed
    try:
        async with trio.open_nursery() as nursery:
            relay = (conn, engine, checker, apply, receive, queued, held, ahead)
            nursery.start_soon(_relay_checked, *relay)
            async with send:
                while conn.closed is None:
                    while conn.resume_at is not None:  # paced: read nothing until then
                        await trio.sleep_until(conn.resume_at)
                    data = await read_chunk(stream, conn, receive_bytes)
                    if data is None:
                        break
                    items, actions = engine.decode(conn, data, trio.current_time())
                    apply(actions)
                    if items:
                        work = checker.prepare(items, engine.seen)
                        if work is None and not ahead[0]:  # nothing to wait for: relay here
                            apply(engine.receive_items(conn, items, trio.current_time()))
                            await paced(conn, engine, apply)
                            if not data or conn.closed is not None:
                                break
                            continue
                        batch = _Batch(work) if work is not None else None
                        if batch is not None:
                            await queued.acquire_on_behalf_of(batch)
                            held.add(batch)
                            nursery.start_soon(batch.run, verifier)
                        ahead[0] += 1
                        try:
                            await send.send((items, batch))
                        except trio.BrokenResourceError:  # the relaying task saw it closed
                            break
                    if not data:
                        break
    finally:
        for batch in held:
            queued.release_on_behalf_of(batch)


async def _relay_checked(
    conn: Incoming,
    engine: Engine,
    checker: SignatureCheck,
    apply: Callable[[list[Action]], None],
    receive: trio.MemoryReceiveChannel[tuple[list, _Batch | None]],
    queued: trio.CapacityLimiter,
    held: set[_Batch],
    ahead: list[int],
) -> None:
    async with receive:
        async for items, batch in receive:
            if batch is not None:
                await batch.done.wait()
                checker.accept(conn, batch.work, batch.reply)
            apply(engine.receive_items(conn, items, trio.current_time()))
            if batch is not None:  # relayed: its place in the node's queue is free
                held.discard(batch)
                queued.release_on_behalf_of(batch)
            await paced(conn, engine, apply)
            ahead[0] -= 1
            if conn.closed is not None:
                return


async def read_chunk(stream: trio.abc.ReceiveStream, conn: Incoming, size: int) -> bytes | None:
    """Up to ``size`` bytes of ``conn`` (``b""``: EOF), or None if the connection broke.

    On a socket a chunk costs one wait (the checkpoint: it parks until the socket is
    readable) and one ``os.read`` of the non-blocking socket: trio's ``receive_some`` tries a
    read before it waits, so in a flood (a copy of every message on every connection) every
    chunk also cost a read that found nothing."""
    sock = getattr(stream, "socket", None)
    if sock is None:  # a memory stream (tests)
        try:
            return await stream.receive_some(size)
        except trio.BrokenResourceError as exc:
            log.debug("incoming %s broke: %s", conn.remote, exc.__cause__ or exc)
            return None
    fd = sock.fileno()
    while True:
        await trio.lowlevel.wait_readable(fd)
        try:
            return os.read(fd, size)
        except BlockingIOError:
            continue
        except OSError as exc:
            log.debug("incoming %s broke: %s", conn.remote, exc.strerror or exc)
            return None


async def paced(conn: Incoming, engine: Engine, apply: Callable[[list[Action]], None]) -> None:
    """While flood control paces ``conn``, wait for its time, then hand back what it held."""
    while conn.resume_at is not None:
        await trio.sleep_until(conn.resume_at)
        apply(engine.resume(conn, trio.current_time()))


def main() -> None:
    """The child: answer request frames on stdin, in order, until EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's ^C is the node's to handle
    buffer = bytearray()
    out = sys.stdout.buffer
    while chunk := os.read(0, CHILD_READ):
        buffer += chunk
        while (payload := unframe(buffer)) is not None:
            out.write(frame(answer(payload)))
        out.flush()


if __name__ == "__main__":
    main()
