"""The headless front end: lines in on stdin, messages out on stdout.  For scripts and tests.

Rules:
- Each stdin line is handed to ``commands.execute`` (so ``/connect``, ``/peers``, ``/nick``,
  ``/quit`` ... work as in the terminal UI); command replies go to stderr.
- Each message received from the network is written to stdout as one ``nick: body`` line
  (``Addr`` when there is no nick), neutralised for the terminal, and flushed; with
  ``json_output`` one JSON object per line instead, holding every wire field.  Our own
  messages are not echoed.
- Writing happens off the event loop, in batches: a stalled stdout never stalls the node; the
  subscription's bounded buffer drops events instead (``Node.subscribe``).
- EOF on stdin leaves the node relaying; ``/quit`` returns.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import BinaryIO

import trio

from .commands import execute
from .events import Delivered, Event
from .node import Node
from .sanitize import for_json, for_terminal

log = logging.getLogger("whisper.headless")


def format_line(event: Delivered, json_output: bool) -> str:
    message = event.message
    if json_output:
        return for_json(json.dumps(dict(message.fields), ensure_ascii=False)) + "\n"
    return f"{for_terminal(message.sender)}: {for_terminal(message.body)}\n"


async def run_headless(
    node: Node,
    *,
    json_output: bool = False,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    stderr: Callable[[str], None] | None = None,
) -> None:
    """Run until ``/quit``.  EOF on stdin keeps relaying (the caller cancels us)."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    say = stderr or _print_err
    with node.subscribe() as events:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_print_messages, events, stdout, json_output)
            while True:
                raw = await trio.to_thread.run_sync(stdin.readline, abandon_on_cancel=True)
                if not raw:
                    log.info("end of input: still relaying; stop with Ctrl-C")
                    await trio.sleep_forever()
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                reply = execute(node, line)
                for text in reply.lines:
                    say(text)
                if reply.quit:
                    nursery.cancel_scope.cancel()
                    return


async def _print_messages(
    events: trio.MemoryReceiveChannel[Event], stdout: BinaryIO, json_output: bool
) -> None:
    async for event in events:
        batch = [event]
        while True:
            try:
                batch.append(events.receive_nowait())
            except trio.WouldBlock:
                break
        text = "".join(
            format_line(e, json_output) for e in batch if type(e) is Delivered and not e.own
        )
        if not text:
            continue
        try:
            await trio.to_thread.run_sync(_write, stdout, text.encode("utf-8", "replace"))
        except (BrokenPipeError, ValueError):
            log.warning("stdout is closed: no longer printing messages (still relaying)")
            return


def _write(stdout: BinaryIO, data: bytes) -> None:
    stdout.write(data)
    stdout.flush()


def _print_err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
