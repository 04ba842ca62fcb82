"""Level ``files``: file messages (extension 10, PROTOCOL.md §7.2).

Rules for every case here:
- A file message is an ordinary chat message with ``FileName``, ``FileType`` and
  ``FileContents`` (standard base64); a peer relays it like any other, its keys intact.
- A file message whose file keys are wrong (bad base64, no ``FileType``, wrong types, a
  hostile ``FileName``) is still a chat message: it is relayed, and the peer survives it.
- What a peer does to a ``FileName`` takes bounded time: a message sent after a name of
  200,000 combining marks (NFC on it whole takes a minute) is relayed within ``PROMPTLY``.
- Each case ends by checking that a new connection is still relayed.
"""

from __future__ import annotations

import base64
from typing import Any

import trio

from ..context import CaseContext, CaseFailed
from ..registry import case

FILE_KEYS = ("FileName", "FileType", "FileContents")
MARKS = 100_000  # of each of two marks: a 400 KB message
PROMPTLY = 2.0  # seconds; parsing 400 KB takes milliseconds
GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")


def _file(ctx: CaseContext, body: str, **fields: Any) -> dict[str, Any]:
    message = ctx.message(body)
    message.update(fields)
    return message


@case(
    "files",
    "file-relay",
    "§7.2",
    "a file message is relayed with FileName, FileType and FileContents intact",
)
async def file_relay(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    conn = await ctx.connect()
    contents = base64.b64encode(GIF * 200).decode()  # 8.4 KiB
    message = _file(
        ctx,
        f"[file] pixel.gif ({len(GIF) * 200 / 1024:.1f} KiB, image/gif)",
        FileName="pixel.gif",
        FileType="image/gif",
        FileContents=contents,
    )
    await conn.send_obj(message)
    await ctx.settle(conn, sink, "a file message")
    got = sink.first(message)
    if got is None:
        raise CaseFailed("the file message was not relayed")
    stripped = [k for k in FILE_KEYS if k not in got]
    if stripped:
        raise CaseFailed(f"relayed the file message with {', '.join(stripped)} stripped")
    changed = [k for k in (*FILE_KEYS, "Body") if got[k] != message[k]]
    if changed:
        raise CaseFailed(f"relayed the file message with {', '.join(changed)} changed")
    await ctx.check_alive(sink, "after a file message")
    return "relayed an 8.4 KiB file with FileName, FileType, FileContents and Body intact"


BAD = {
    "bad base64": {"FileName": "x.bin", "FileType": "text/plain", "FileContents": "*not base64*"},
    "no FileType": {"FileName": "x.bin", "FileContents": "aGk="},
    "FileContents a number": {"FileName": "x.bin", "FileType": "text/plain", "FileContents": 5},
    "FileName a list": {"FileName": ["x"], "FileType": "text/plain", "FileContents": "aGk="},
    "FileName ../../etc/passwd": {
        "FileName": "../../etc/passwd",
        "FileType": "text/plain",
        "FileContents": "aGk=",
    },
    "FileName with NUL and escapes": {
        "FileName": "a\u0000b\u001b[2J\u202egpj.exe",
        "FileType": "text/plain",
        "FileContents": "aGk=",
    },
    "FileName of 10,000 characters": {
        "FileName": "x" * 10_000 + ".txt",
        "FileType": "text/plain",
        "FileContents": "aGk=",
    },
}


@case(
    "files",
    "file-bad",
    "§7.2",
    "file messages with bad base64, no FileType, wrong types or hostile names are still relayed",
    fresh=True,
)
async def file_bad(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    conn = await ctx.connect()
    messages = {what: _file(ctx, f"[file] {what}", **fields) for what, fields in BAD.items()}
    for message in messages.values():
        await conn.send_obj(message)
    await ctx.settle(conn, sink, "file messages with bad file keys")
    dropped = [what for what, m in messages.items() if not sink.got(m)]
    if dropped:
        raise CaseFailed(f"dropped file messages with {'; '.join(dropped)}")
    await ctx.check_alive(sink, "after bad file messages")
    return f"relayed all {len(BAD)} as chat messages and kept serving"


@case(
    "files",
    "file-name-marks",
    "§7.2",
    f"a message sent after a FileName of {2 * MARKS:,} combining marks is relayed within"
    f" {PROMPTLY:g}s: the peer does not normalise the name whole",
    fresh=True,
)
async def file_name_marks(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    conn = await ctx.connect()
    name = "a" + "\u0301" * MARKS + "\u0316" * MARKS + ".txt"
    what = f"a FileName of {2 * MARKS:,} combining marks"
    marks = _file(
        ctx,
        "[file] a.txt (2 B, text/plain)",
        FileName=name,
        FileType="text/plain",
        FileContents="aGk=",
    )
    after = ctx.message(f"files: an honest message after {what}")
    await conn.send_obj(marks, after)
    sent = trio.current_time()
    with trio.move_on_after(PROMPTLY):
        await ctx.until(lambda: bool(sink.got(after)), f"the message sent after {what}")
    took = trio.current_time() - sent
    if not sink.got(after):
        raise CaseFailed(
            f"the message sent after {what} was not relayed within {PROMPTLY:g}s: the name"
            " stalls the peer (and every peer it relays to)"
        )
    await ctx.check_alive(sink, f"after {what}")
    return f"relayed the message sent after {what} in {took:.2f}s"
