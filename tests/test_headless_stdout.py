"""headless.py writes a batch on the event loop only when a pipe takes it whole at once."""

from __future__ import annotations

import fcntl
import os
import select
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.testing

from whisper.display import HISTORY_HOLD
from whisper.events import Delivered, Notice
from whisper.headless import _write_now, run_headless
from whisper.message import Message

from .helpers import start_node


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


async def test_a_message_is_printed_on_the_nodes_turn_while_the_printer_waits(
    nursery, autojump_clock
) -> None:
    """``Subscription.direct``: a plain message reaches the pipe within ``publish_now``, with
    no task switch; history and notices still go through the printer's task, in order."""
    node = await start_node(nursery)
    out_r, out_w = os.pipe()
    in_r, in_w = os.pipe()  # stdin held open: the front end keeps running
    said: list[str] = []
    try:
        nursery.start_soon(
            partial(run_headless, node, stdin_fd=in_r, stdout_fd=out_w, stderr=said.append)
        )
        await trio.testing.wait_all_tasks_blocked()
        os.set_blocking(out_r, False)
        node.publish_now([Delivered(Message.create(id="m1", addr="127.0.0.1:9", body="hi"))])
        assert os.read(out_r, 1000) == b"127.0.0.1:9: hi\n"  # written before any checkpoint
        history = Delivered(Message.create(id="m2", addr="127.0.0.1:9", body="old"), history=True)
        node.publish_now([history, Notice("a notice")])
        await trio.testing.wait_all_tasks_blocked()  # the task holds the history ...
        live = Delivered(Message.create(id="m3", addr="127.0.0.1:9", body="new"))
        node.publish_now([live])  # ... so a live message waits behind it, not overtakes
        with pytest.raises(BlockingIOError):
            os.read(out_r, 1000)  # left to the printer's task
        await trio.sleep(HISTORY_HOLD + 1)  # the task waits out a burst of history
        assert said == ["a notice"]
        printed = os.read(out_r, 1000)
        assert printed.endswith(b"127.0.0.1:9: old\n127.0.0.1:9: new\n"), printed
    finally:
        nursery.cancel_scope.cancel()
        for fd in (out_r, out_w, in_r, in_w):
            os.close(fd)


async def test_stdout_that_is_not_a_pipe_is_left_to_the_printers_task(nursery, tmp_path) -> None:
    node = await start_node(nursery)
    in_r, in_w = os.pipe()
    with open(tmp_path / "out", "wb") as out:
        try:
            nursery.start_soon(partial(run_headless, node, stdin_fd=in_r, stdout_fd=out.fileno()))
            await trio.testing.wait_all_tasks_blocked()
            node.publish_now([Delivered(Message.create(id="m1", addr="127.0.0.1:9", body="hi"))])
            assert (tmp_path / "out").read_bytes() == b""  # a file: written from a thread
            with trio.fail_after(5):
                while not (tmp_path / "out").read_bytes():
                    await trio.testing.wait_all_tasks_blocked()
            assert (tmp_path / "out").read_bytes() == b"127.0.0.1:9: hi\n"
        finally:
            nursery.cancel_scope.cancel()
            os.close(in_r)
            os.close(in_w)
