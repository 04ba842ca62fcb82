"""Opening a history that cannot be used: locked, damaged, read-only, full, not ours, newer.

Each must fail with one typed ``HistoryError`` whose text names the file and says what to do.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.store_helpers import read_only, records
from whisper.store import (
    History,
    HistoryCorrupt,
    HistoryFull,
    HistoryLocked,
    HistoryNotOurs,
    HistoryReadOnly,
    HistoryTooNew,
)
from whisper.store.export import open_reader

HOLD = """
import sys
from whisper.store import History
h = History.open(sys.argv[1])
print("open", flush=True)
sys.stdin.read()
"""


def one_line(exc: BaseException, path) -> str:
    text = str(exc)
    assert "\n" not in text and str(path) in text
    return text


def test_a_second_whisper_in_this_process_is_refused(tmp_path):
    path = tmp_path / "h"
    with History.open(path):
        with pytest.raises(HistoryLocked) as caught:
            History.open(path)
        assert f"another whisper (pid {os.getpid()})" in one_line(caught.value, path)
    History.open(path).close()  # free again once closed


def test_a_whisper_in_another_process_holds_it_until_it_dies(tmp_path):
    path = tmp_path / "h"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout.readline() == b"open\n"
        with pytest.raises(HistoryLocked) as caught:
            History.open(path)
        assert f"(pid {child.pid})" in one_line(caught.value, path)
        assert "stop it" in str(caught.value)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    History.open(path).close()  # the kernel dropped the lock with the process


def test_a_write_lock_held_by_another_program(tmp_path):
    path = tmp_path / "h"
    History.open(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(HistoryLocked) as caught:
            History.open(path, busy_timeout=0.05)
        assert time.monotonic() - started < 5
        assert "in use by another program" in one_line(caught.value, path)
    finally:
        other.execute("ROLLBACK")
        other.close()
    History.open(path).close()


def test_a_write_lock_taken_while_open_fails_a_write(tmp_path):
    path = tmp_path / "h"
    with History.open(path, busy_timeout=0.05) as h:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(HistoryLocked):
            h.add_messages(records(1))
        other.execute("ROLLBACK")
        other.close()
        assert h.add_messages(records(1)) == 1


def test_garbage_is_not_a_database(tmp_path):
    path = tmp_path / "h"
    path.write_bytes(os.urandom(10_000))
    with pytest.raises(HistoryCorrupt) as caught:
        History.open(path)
    assert "move it aside" in one_line(caught.value, path)
    assert path.stat().st_size == 10_000  # left as it was


def test_damaged_pages_are_found_on_open(tmp_path):
    path = tmp_path / "h"
    with History.open(path) as h:
        h.add_messages(records(3000, "some text to fill pages " * 5))
    data = bytearray(path.read_bytes())
    page = 4096
    data[page * 10 : page * 14] = os.urandom(page * 4)
    path.write_bytes(bytes(data))
    with pytest.raises(HistoryCorrupt):
        History.open(path)


def test_another_programs_database_is_left_alone(tmp_path):
    path = tmp_path / "places.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE bookmarks (url TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(HistoryNotOurs) as caught:
        History.open(path)
    assert "a file of its own" in one_line(caught.value, path)
    assert path.read_bytes() == before


def test_a_history_from_a_newer_whisper_is_refused(tmp_path):
    path = tmp_path / "h"
    History.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(HistoryTooNew) as caught:
        History.open(path)
    assert "schema 99" in one_line(caught.value, path)
    assert "upgrade whisper" in str(caught.value)


def test_a_read_only_file(tmp_path):
    path = tmp_path / "h"
    with History.open(path) as h:
        h.add_messages(records(3))
    with read_only(path):
        with pytest.raises(HistoryReadOnly) as caught:
            History.open(path)
        assert "make it writable" in one_line(caught.value, path)
        conn = open_reader(path)  # still exportable
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 3
        conn.close()


def test_a_read_only_directory(tmp_path):
    folder = tmp_path / "data"
    path = folder / "h"
    History.open(path).close()
    with read_only(folder):
        with pytest.raises(HistoryReadOnly) as caught:
            History.open(path)
        one_line(caught.value, path)
        with pytest.raises(HistoryReadOnly):
            History.open(folder / "new")


def test_a_full_database_fails_the_write_and_keeps_what_was_committed(tmp_path):
    path = tmp_path / "h"
    with History.open(path, max_pages=60) as h:
        h.add_messages(records(10))
        with pytest.raises(HistoryFull) as caught:
            for i in range(1000):
                h.add_messages(records(20, f"batch {i} " + "x" * 2000))
        assert "free some space" in one_line(caught.value, path)
        stored = h.count()
        assert stored >= 10
        with pytest.raises(HistoryFull):
            h.add_messages(records(20, "still " + "y" * 2000))
        assert h.count() == stored  # a failed batch is rolled back whole
        assert h.page(limit=1)[0].seq == stored
    with History.open(path) as h:  # without the cap it takes more again
        assert h.count() == stored
        assert h.add_messages(records(20, "later " + "z" * 2000)) == 20
