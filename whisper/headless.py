"""The headless front end: lines in on stdin, messages out on stdout.  For scripts and tests.

Rules:
- Each stdin line is handed to ``commands.execute`` (so ``/connect``, ``/peers``, ``/nick``,
  ``/quit`` ... work as in the terminal UI); command replies go to stderr, neutralised for
  the terminal.
- Each message received from the network is written to stdout as one ``nick: body`` line
  (``Addr`` when there is no nick), an action (``/me waves``) as ``* nick waves`` as the
  terminal UI shows it, neutralised for the terminal, and flushed.  With ``json_output``
  one JSON object per line instead (``json_fields``; README.md documents it): every wire
  key, and ``Nick`` (whichever key the wire used), ``History`` and ``File`` always; a
  file's base64 ``FileContents`` only with ``file_contents``.  Our own messages are not
  echoed.  With identities on (extension 13) a line carries ``Verified``, ``Direct``
  (a DM's ``Body`` and ``Nick`` are the ones inside it; ``Sealed`` is left out), ``Channel``
  and ``Text`` (without ``[#room] ``) for a channel message, ``Impostor`` (the short
  fingerprint) for one whose nick is pinned to another key; a text line starts with
  ``display.identity_marks``.
- History (a backlog replay, ``display.py``) is written in timestamp order, each line
  starting ``[history HH:MM] ``; in JSON it has ``"History": true``.  A file message shows
  ``[file #N] name (size, type)  /save N`` as its body (the JSON line has the file keys).
- Writing happens off the event loop, in batches: a stalled stdout never stalls the node; the
  subscription's bounded buffer drops events instead (``Node.subscribe``).  Only a batch a
  pipe takes whole without blocking (at most ``PIPE_BUF`` bytes, the pipe not full) is
  written on the event loop, saving the hand-over to a thread.  Such a batch of messages
  alone (no history, no notice) that arrives while the printer waits on a pipe is written
  on the node's own turn (``Subscription.direct``): one task woken per message, not two.
- EOF on stdin leaves the node relaying; ``/quit`` says goodbye (presence) and returns.
- Presence notices (``bob joined``, ``bob left`` ...) are chat: one line each on stderr.
- stdin and stdout are read and written as raw file descriptors from worker threads: a thread
  blocked in ``os.read`` holds no interpreter lock, so the process can always exit (a thread
  blocked in ``sys.stdin.buffer.readline`` makes interpreter shutdown abort).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import stat
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import trio

from .backlog import HISTORY_KEY
from .commands import execute
from .display import history_stamp, identity_marks, shown_body, shown_sender, take_batch
from .events import PRESENCE_EVENTS, Delivered, Event, Notice
from .files import CONTENTS_KEY, RejectedFile, StoredFile
from .identity import short_fingerprint
from .node import Node
from .sanitize import for_json, for_terminal
from .subscription import Subscription

READ_BYTES = 65536
ACTION_PREFIX = "/me "

log = logging.getLogger("whisper.headless")


def format_line(event: Delivered, json_output: bool, *, file_contents: bool = False) -> str:
    if json_output:
        fields = json_fields(event, file_contents=file_contents)
        return for_json(json.dumps(fields, ensure_ascii=False)) + "\n"
    message = event.message
    mark = f"[history {history_stamp(message)}] " if event.history else ""
    mark += for_terminal(identity_marks(event))
    sender, body = for_terminal(shown_sender(event)), for_terminal(shown_body(event))
    if event.file is None and body.startswith(ACTION_PREFIX):
        return f"{mark}* {sender} {body[len(ACTION_PREFIX) :]}\n"
    return f"{mark}{sender}: {body}\n"


def json_fields(event: Delivered, *, file_contents: bool = False) -> dict[str, Any]:
    """One ``-json`` line's object (the schema is in README.md, "-json lines")."""
    message = event.message
    fields = dict(message.fields)
    fields["Nick"] = message.nick  # whichever key the wire used (omitempty from the Go peer)
    fields[HISTORY_KEY] = event.history
    file = event.file
    if isinstance(file, StoredFile):
        fields["File"] = {
            "Number": file.number,
            "Name": file.name,
            "Type": file.mime,
            "Size": file.size,
        }
    elif isinstance(file, RejectedFile):
        fields["File"] = {"Rejected": file.reason}
    else:
        fields["File"] = None
    if not file_contents:
        fields.pop(CONTENTS_KEY, None)
    ident = event.ident
    if ident is not None:  # extension 13: what the signature, the pins and a DM said
        fields["Verified"] = ident.verified
        fields["Direct"] = ident.direct
        if ident.impostor:
            fields["Impostor"] = short_fingerprint(ident.key)  # type: ignore[arg-type]
        if ident.direct:
            fields["Body"], fields["Nick"] = ident.text, ident.nick
            fields.pop("Sealed", None)
        if ident.channel is not None:
            fields["Channel"] = ident.channel
            fields["Text"] = ident.text
    return fields


async def run_headless(
    node: Node,
    *,
    json_output: bool = False,
    file_contents: bool = False,
    stdin_fd: int = 0,
    stdout_fd: int = 1,
    stderr: Callable[[str], None] | None = None,
) -> None:
    """Run until ``/quit``.  EOF on stdin keeps relaying (the caller cancels us)."""
    say = stderr or _print_err
    with node.subscribe() as events:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_print_messages, events, stdout_fd, json_output, file_contents, say)
            async for line in read_lines(stdin_fd):
                reply = await execute(node, line)
                for text in reply.lines:
                    say(for_terminal(text))
                if reply.show is not None:
                    say("/show is for the terminal UI: headless prints every message whole")
                if reply.quit:
                    await node.farewell()
                    nursery.cancel_scope.cancel()
                    return
            say("end of input: still relaying; stop with Ctrl-C")
            await trio.sleep_forever()


async def read_lines(fd: int) -> AsyncIterator[str]:
    """Lines from a file descriptor (UTF-8, invalid bytes replaced), without the newline."""
    pending = b""
    while True:
        try:
            data = await trio.to_thread.run_sync(os.read, fd, READ_BYTES, abandon_on_cancel=True)
        except OSError as exc:  # EIO from a terminal that went away ...: the end of input
            log.warning("cannot read stdin: %s", exc.strerror or exc)
            break
        if not data:
            break
        *lines, pending = (pending + data).split(b"\n")
        for raw in lines:
            yield raw.decode("utf-8", "replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8", "replace").rstrip("\r")


async def _print_messages(
    events: Subscription,
    stdout_fd: int,
    json_output: bool,
    file_contents: bool,
    say: Callable[[str], None],
) -> None:
    idle = [False]  # waiting for the next batch (not holding one, as take_batch may)

    def print_now(batch: Sequence[Event]) -> bool:
        """The batch written here and now, if it is only messages and ``_write_now`` can."""
        if not idle[0] or not all(type(e) is Delivered and not e.history for e in batch):
            return False
        text = _lines(batch, json_output, file_contents)
        return not text or _write_now(stdout_fd, text.encode("utf-8", "replace"))

    with contextlib.suppress(OSError):  # a terminal or a file: the task writes, in a thread
        if stat.S_ISFIFO(os.fstat(stdout_fd).st_mode):
            events.direct = print_now
    try:
        await _print_batches(events, stdout_fd, json_output, file_contents, say, idle)
    finally:
        events.direct = None


async def _print_batches(
    events: Subscription,
    stdout_fd: int,
    json_output: bool,
    file_contents: bool,
    say: Callable[[str], None],
    idle: list[bool],
) -> None:
    while True:
        idle[0] = True
        try:
            event = await events.receive()
        except trio.EndOfChannel:
            return
        finally:
            idle[0] = False
        batch = [event]
        while True:
            try:
                batch.append(events.receive_nowait())
            except trio.WouldBlock:
                break
        batch = await take_batch(events, batch)  # history: wait out the burst, then in order
        for e in batch:  # presence notices are chat: on stderr, one line each; so are
            if isinstance(e, PRESENCE_EVENTS) or (type(e) is Notice and not e.warning):
                say(for_terminal(e.text))  # the node's notices (a warning is logged)
        text = _lines(batch, json_output, file_contents)
        if not text:
            continue
        data = text.encode("utf-8", "replace")
        try:
            if not _write_now(stdout_fd, data):
                await trio.to_thread.run_sync(_write_all, stdout_fd, data, abandon_on_cancel=True)
        except OSError:
            log.warning("stdout is closed: no longer printing messages (still relaying)")
            return


def _lines(batch: Sequence[Event], json_output: bool, file_contents: bool) -> str:
    """The stdout lines of a batch's messages, ours left out (they are not echoed)."""
    return "".join(
        format_line(e, json_output, file_contents=file_contents)
        for e in batch
        if type(e) is Delivered and not e.own
    )


def _write_now(fd: int, data: bytes) -> bool:
    """Write ``data`` here, on the event loop, when that cannot block: stdout is a pipe with
    room (``POLLOUT``: a free buffer) and ``data`` is at most ``PIPE_BUF`` bytes, which a
    pipe then takes whole.  False: not written (a terminal, a file, a full pipe, more)."""
    if len(data) > select.PIPE_BUF or not stat.S_ISFIFO(os.fstat(fd).st_mode):
        return False
    poll = select.poll()
    poll.register(fd, select.POLLOUT)
    if not poll.poll(0):
        return False
    os.write(fd, data)
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _print_err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
