"""headless.py writes a batch on the event loop only when a pipe takes it whole at once."""

from __future__ import annotations

import fcntl
import os
import select
from pathlib import Path

from whisper.headless import _write_now


def test_a_pipe_with_room_takes_a_small_batch_at_once() -> None:
    r, w = os.pipe()
    try:
        assert _write_now(w, b"alice: hi\n") is True
        assert os.read(r, 100) == b"alice: hi\n"
        assert _write_now(w, b"x" * (select.PIPE_BUF + 1)) is False  # could be split
    finally:
        os.close(r)
        os.close(w)


def test_a_full_pipe_or_a_file_is_left_to_the_thread(tmp_path: Path) -> None:
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
        try:
            while True:  # fill it (non-blocking here, only to fill it)
                os.write(w, b"y" * 4096)
        except BlockingIOError:
            pass
        fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        assert _write_now(w, b"alice: hi\n") is False  # would block: not written
    finally:
        os.close(r)
        os.close(w)
    with open(tmp_path / "out", "wb") as f:
        assert _write_now(f.fileno(), b"alice: hi\n") is False
    assert (tmp_path / "out").read_bytes() == b""
