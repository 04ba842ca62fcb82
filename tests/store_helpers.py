"""Helpers for the history store's tests: messages, records, and a read-only file as root."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from whisper.ids import hashed_id
from whisper.message import Message
from whisper.store import FileInfo, Record

ADDR = "127.0.0.1:6001"


def message(
    body: str = "hello", *, addr: str = ADDR, nick: str = "alice", ts: int | None = None, **extra
) -> Message:
    ts = int(time.time() * 1000) if ts is None else ts
    return Message.create(
        id=hashed_id(addr, body, ts), addr=addr, body=body, nick=nick, timestamp=ts, extra=extra
    )


def record(body: str = "hello", *, at: float | None = None, **kw: Any) -> Record:
    flags = {k: kw.pop(k) for k in ("own", "history", "direct", "channel", "file") if k in kw}
    return Record(message(body, **kw), time.time() if at is None else at, **flags)


def records(n: int, prefix: str = "message", **kw: Any) -> list[Record]:
    return [record(f"{prefix} {i}", **kw) for i in range(n)]


def file_record(name: str = "cat.gif") -> Record:
    return record(
        f"[file] {name} (3 B, image/gif)",
        FileName=name,
        FileType="image/gif",
        FileContents="R0lG",
        file=FileInfo(name, "image/gif", 3),
    )


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` (a file or a directory) unwritable, even for root (``chattr +i``)."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"as root, only chattr +i makes a file read-only: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
