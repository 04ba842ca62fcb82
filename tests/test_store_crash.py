"""A SIGKILL loses nothing that was shown: a child stores through the writer, reports what
it released for display, and is killed mid-stream; the file reopened holds all of it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from whisper.store import History

CHILD = Path(__file__).with_name("store_crash_child.py")
SHOWN_BEFORE_KILL = 5000


def run_and_kill(path: Path) -> tuple[list[str], bool]:
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    shown: list[str] = []
    linked = False
    try:
        for line in child.stdout:
            text = line.decode()
            if text.startswith("shown "):
                shown.append(text.split()[1])
            linked = linked or text == "peer linked\n"
            if len(shown) >= SHOWN_BEFORE_KILL:
                child.send_signal(signal.SIGKILL)
                break
        else:
            raise AssertionError(f"the child ended: {child.stderr.read().decode()[-2000:]}")
        # whatever it printed before dying was shown too
        shown += [line.split()[1] for line in child.stdout.read().decode().splitlines()]
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
        errors = child.stderr.read().decode()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    assert errors == ""  # no "history is off": what was shown was meant to be stored
    return shown, linked


def test_sigkill_loses_nothing_that_was_shown_and_the_peers_are_remembered(tmp_path):
    path = tmp_path / "h"
    shown, linked = run_and_kill(path)
    assert linked
    with History.open(path) as h:  # no stale lock, no damage
        missing = [i for i in shown if h.find(i) is None]
        assert missing == []
        assert h.count() >= len(shown)
        assert [p.addr for p in h.known_peers()] == ["127.0.0.1:7001"]
    again, _ = run_and_kill(path)  # and once more, on top of what is there
    with History.open(path) as h:
        assert [i for i in again if h.find(i) is None] == []
        assert h.count() >= len(shown) + len(again)
