"""Level ``files``: file messages (extension 10, PROTOCOL.md §7.2).

Rules for every case here:
- A file message is an ordinary chat message with ``FileName``, ``FileType`` and
  ``FileContents`` (standard base64); a peer relays it like any other, its keys intact.
- A file message whose file keys are wrong (bad base64, no ``FileType``, wrong types, a
  hostile ``FileName``) is still a chat message: it is relayed, and the peer survives it.
- Each case ends by checking that a new connection is still relayed.
"""

from __future__ import annotations

import base64
from typing import Any

from ..context import CaseContext, CaseFailed
from ..registry import case

FILE_KEYS = ("FileName", "FileType", "FileContents")
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
