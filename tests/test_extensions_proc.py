"""Backlog and file transfer with real ``whisper`` processes on loopback, and their flags."""

from __future__ import annotations

import os
import re
from pathlib import Path

import trio

from .proc import Whisper, one_line, run

LOOPBACK = ["-host", "127.0.0.1", "-port", "0", "-headless", "-no-discovery"]
TIMEOUT = 30


async def test_a_newcomer_is_replayed_recent_history(nursery) -> None:
    with trio.fail_after(TIMEOUT):
        alice = await Whisper(*LOOPBACK, "-nick", "alice").start(nursery)
        await alice.type("one", "two", "/files")  # nobody to send to yet: kept in the backlog
        await alice.wait_line("stderr", "^no files received")  # so "one" and "two" were said
        bob = await Whisper(*LOOPBACK, "-nick", "bob", "-peer", alice.addr).start(nursery)
        await bob.wait_line("stderr", f"connected to {alice.addr}")
        await bob.type("hi, I am new")  # alice hears it and dials bob back: replay first
        await alice.wait_line("stdout", "^bob: hi, I am new$")
        await bob.wait_line("stdout", r"^\[history \d\d:\d\d\] alice: two$")
        await alice.type("live now")
        await bob.wait_line("stdout", "^alice: live now$")
        assert await alice.stop() == 0 and await bob.stop() == 0
    history = [line for line in bob.stdout if line.startswith("[history")]
    assert [line.split("] ", 1)[1] for line in history] == ["alice: one", "alice: two"]
    assert bob.stdout[-1] == "alice: live now"
    assert not any("hi, I am new" in line for line in bob.stdout)  # not replayed to its author


async def test_send_files_save_between_processes(nursery, tmp_path: Path) -> None:
    picture = tmp_path / "cat.gif"
    picture.write_bytes(b"GIF89a" + bytes(range(256)) * 40)
    out = tmp_path / "saved"
    out.mkdir()
    with trio.fail_after(TIMEOUT):
        alice = await Whisper(*LOOPBACK, "-nick", "alice").start(nursery)
        bob = await Whisper(*LOOPBACK, "-nick", "bob", "-peer", alice.addr).start(nursery)
        await bob.type("hello")  # so that alice dials bob
        await alice.wait_line("stderr", f"connected to {bob.addr}")
        await alice.type(f"/send {picture}")
        await alice.wait_line("stderr", r"^sent cat\.gif \(10\.0 KiB\)$")
        await bob.wait_line(
            "stdout", r"^alice: \[file #1\] cat\.gif \(10\.0 KiB, image/gif\)  /save 1$"
        )
        await bob.type("/files")
        await bob.wait_line("stderr", r"^  #1  cat\.gif \(10\.0 KiB, image/gif\)  from alice")
        assert os.listdir(out) == []  # nothing written unasked
        await bob.type(f"/save 1 {out}")
        await bob.wait_line("stderr", f"^saved #1 as {re.escape(str(out / 'cat.gif'))}$")
        await bob.type(f"/save 1 {out}")
        await bob.wait_line("stderr", f"^saved #1 as {re.escape(str(out / 'cat (1).gif'))}$")
        assert await alice.stop() == 0 and await bob.stop() == 0
    assert (out / "cat.gif").read_bytes() == picture.read_bytes()


async def test_downloads_flag_saves_automatically(nursery, tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    note = tmp_path / ".bashrc"
    note.write_text("echo hi\n")
    with trio.fail_after(TIMEOUT):
        alice = await Whisper(*LOOPBACK, "-nick", "alice").start(nursery)
        bob = await Whisper(
            *LOOPBACK, "-nick", "bob", "-peer", alice.addr, "-downloads", str(downloads)
        ).start(nursery)
        await bob.type("hello")
        await alice.wait_line("stderr", f"connected to {bob.addr}")
        await alice.type(f"/send {note}")
        await bob.wait_line("stderr", f"saved file #1 as {re.escape(str(downloads / 'bashrc'))}$")
        assert await alice.stop() == 0 and await bob.stop() == 0
    assert (downloads / "bashrc").read_text() == "echo hi\n"


async def test_flags_are_checked(tmp_path: Path) -> None:
    for args, words in [
        (["-backlog", "-1"], "-backlog -1: must be 0-10000"),
        (["-backlog", "10001"], "must be 0-10000"),
        (["-downloads", str(tmp_path / "missing")], "not a directory"),
    ]:
        code, _, err = await run(*LOOPBACK, *args)
        assert code == 2 and words in err and one_line(err), err
