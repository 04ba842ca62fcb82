"""Export (whisper/store/export.py) and the ``whisper-history`` command (whisper/store/cli.py)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import pytest

from tests.store_helpers import file_record, record, records
from whisper.store import FileInfo, History, HistoryCorrupt, Record
from whisper.store.cli import main
from whisper.store.export import export

NOON = time.mktime((2026, 5, 9, 12, 3, 4, 0, 0, -1))  # local time


def sample(path):
    with History.open(path) as h:
        h.add_messages(
            [
                record("hello", nick="goldy", at=NOON),
                record("/me waves", nick="goldy", at=NOON + 1),
                record(
                    "old one", nick="bob", history=True, ts=int((NOON - 3600) * 1000), at=NOON + 2
                ),
                record("evil \x1b[2J\nline", nick="m\x07allory", at=NOON + 3, channel="ops"),
                Record(file_record().message, NOON + 4, file=FileInfo(rejected="bad base64")),
                record("mine", own=True, at=NOON + 5, Ext={"k": [1, 2]}),
            ]
        )


def test_text_export_one_safe_line_per_message(tmp_path):
    db, out = tmp_path / "h", tmp_path / "log.txt"
    sample(db)
    assert export(db, out, "text") == 6
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "2026-05-09 12:03:04 <goldy> hello"
    assert lines[1] == "2026-05-09 12:03:05 * goldy waves"
    assert lines[2] == "2026-05-09 12:03:06 [history 11:03] <bob> old one"
    assert lines[3] == "2026-05-09 12:03:07 #ops <m\u2407allory> evil \u241b[2J\u240aline"
    assert lines[4].endswith("<alice> [file] cat.gif (3 B, image/gif) [file rejected: bad base64]")
    assert lines[5] == "2026-05-09 12:03:09 <alice> mine"
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600


def test_jsonl_export_keeps_the_wire_object_and_our_marks(tmp_path):
    db, out = tmp_path / "h", tmp_path / "log.jsonl"
    sample(db)
    assert export(db, out) == 6
    objs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [o["seq"] for o in objs] == [1, 2, 3, 4, 5, 6]
    assert objs[0]["received_at"] == NOON
    assert objs[0]["message"]["Body"] == "hello" and objs[0]["message"]["Nick"] == "goldy"
    assert objs[2]["history"] is True and objs[5]["own"] is True
    assert objs[3]["channel"] == "ops" and objs[3]["message"]["Body"] == "evil \x1b[2J\nline"
    assert objs[4]["file"] == {"rejected": "bad base64"}
    assert objs[4]["message"]["FileName"] == "cat.gif"
    assert "FileContents" not in objs[4]["message"]
    assert objs[5]["message"]["Ext"] == {"k": [1, 2]}
    assert set(objs[0]) == {
        "seq",
        "received_at",
        "own",
        "history",
        "direct",
        "channel",
        "file",
        "message",
    }


def test_export_refuses_to_overwrite_and_leaves_nothing_half_written(tmp_path):
    db, out = tmp_path / "h", tmp_path / "log"
    sample(db)
    out.write_text("precious")
    with pytest.raises(FileExistsError):
        export(db, out)
    assert out.read_text() == "precious"
    bad = tmp_path / "bad"
    bad.write_bytes(os.urandom(5000))
    with pytest.raises(HistoryCorrupt):
        export(bad, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_export_while_a_whisper_has_the_history_open(tmp_path):
    db = tmp_path / "h"
    with History.open(db) as h:
        h.add_messages(records(2500))  # more than one chunk, still in the WAL
        assert export(db, tmp_path / "log") == 2500
        h.add_messages(records(1, "after"))
        assert export(db, tmp_path / "log2", "text") == 2501


def test_the_command_exports_and_searches(tmp_path, capsys):
    db = tmp_path / "h"
    sample(db)
    assert main(["export", "--db", str(db), "--format", "text", "--utc", "-"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 6 and out[0].endswith("Z <goldy> hello")
    assert main(["export", "--db", str(db), str(tmp_path / "x.jsonl")]) == 0
    assert "wrote 6 messages" in capsys.readouterr().err
    assert main(["export", "--db", str(db), str(tmp_path / "x.jsonl")]) == 1
    assert "exists: give a new file name" in capsys.readouterr().err
    assert main(["search", "--db", str(db), "HELLO"]) == 0
    assert capsys.readouterr().out == "2026-05-09 12:03:04 <goldy> hello\n"
    assert main(["search", "--db", str(db), "--format", "jsonl", '("old', "*"]) == 0
    assert json.loads(capsys.readouterr().out)["message"]["Body"] == "old one"


def test_the_command_as_a_process_says_what_is_wrong_in_one_line(tmp_path):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "whisper.store", *args], capture_output=True, text=True
        )

    db = tmp_path / "h"
    sample(db)
    done = run("export", "--db", str(db), "--format", "text", "-")
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 6
    missing = run("export", "--db", str(tmp_path / "none"), "-")
    assert missing.returncode == 1
    assert (
        missing.stderr
        == f"whisper-history: history {tmp_path / 'none'}: does not exist; check the path\n"
    )
    usage = run("export", "--format", "xml", "-")
    assert usage.returncode == 2 and len(usage.stderr.splitlines()) == 1
    assert "Traceback" not in missing.stderr + usage.stderr
