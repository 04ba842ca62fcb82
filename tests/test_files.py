"""File transfer (extension 10): names, parsing, the store, saving; /send -> /save on loopback."""

from __future__ import annotations

import base64
import os
import unicodedata
from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from whisper import files
from whisper.codec import Limits
from whisper.commands import execute
from whisper.display import shown_body
from whisper.events import Delivered, Notice
from whisper.files import (
    AUTOSAVE_MAX_BYTES,
    AUTOSAVE_MIN_FILE_BYTES,
    MAX_NAME_BYTES,
    MAX_NORMALIZED,
    MAX_RECEIVED_NAME,
    FileError,
    FilesConfig,
    FileStore,
    RejectedFile,
    StoredFile,
    max_file_size,
    parse,
    safe_name,
)
from whisper.files_io import prepare, save, save_in
from whisper.message import Message

from .gopeer import GoPeer
from .helpers import Inbox, Sink, inbox, origin, send, sink, start_node, wire

TIMEOUT = 10
#: The name that froze a node for 14 s (NFC is quadratic in a run of combining marks).
MARKS = "a" + "\u0301" * 40_000 + "\u0316" * 40_000 + ".txt"
DEVICES = {"con", "prn", "aux", "nul", "com1", "lpt1", "conin$"}


def file_fields(contents: object = "aGk=", mime: object = "text/plain", name: object = "hi.txt"):
    return {"FileName": name, "FileType": mime, "FileContents": contents}


def file_message(body: str = "[file] x", **fields: object) -> Message:
    return Message.create(id="i", addr="10.0.0.1:1", body=body, nick="eve", extra=fields)


# -- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hostile", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\system32\\evil.dll", "evil.dll"),
        ("/etc/shadow", "shadow"),
        (".bashrc", "bashrc"),
        ("...hidden", "hidden"),
        ("..", "file.txt"),
        ("", "file.txt"),
        ("/", "file.txt"),
        ("con", "_con"),
        ("CON.txt", "_CON.txt"),
        ("nul", "_nul"),
        ("lpt1.log", "_lpt1.log"),
        ("a\x00b.txt", "a_b.txt"),
        ("bell\x07\x1b[2J.txt", "bell__[2J.txt"),
        ("evil\u202egnp.exe", "evil_gnp.exe"),
        ("-rf", "_rf"),
        ("name. ", "name"),
        ("a:b*c?.txt", "a_b_c_.txt"),
        ("猫 ☕.gif", "猫 ☕.gif"),
        ("e\u0301te.txt", "\u00e9te.txt"),
    ],
)
def test_hostile_names_become_safe(hostile: str, safe: str) -> None:
    assert safe_name(hostile, "text/plain") == safe


def test_long_names_are_cut_keeping_the_extension() -> None:
    name = safe_name("x" * 1000 + ".gif")
    assert name.endswith(".gif") and len(name.encode()) <= MAX_NAME_BYTES
    wide = safe_name("é" * 300 + ".tar.gz")
    assert wide.endswith(".gz") and len(wide.encode()) <= MAX_NAME_BYTES
    wide.encode("utf-8")  # cut on a character boundary


def test_a_name_is_cut_before_it_is_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    normalised: list[int] = []
    normalize = unicodedata.normalize

    def counting(form: str, text: str) -> str:
        normalised.append(len(text))
        return normalize(form, text)

    monkeypatch.setattr(files.unicodedata, "normalize", counting)
    name = safe_name(MARKS)
    assert normalised and max(normalised) <= MAX_NORMALIZED  # the work is bounded
    assert name.startswith("\u00e1") and name.endswith(".txt")
    assert len(name.encode()) <= MAX_NAME_BYTES
    assert safe_name("x" * 5000 + "/" + MARKS) == name  # the last component is cut, not the path


def test_an_absurdly_long_name_rejects_the_file() -> None:
    got = parse(file_fields(name=MARKS), 1000)
    assert isinstance(got, RejectedFile) and "longer than 4,096 characters" in got.reason
    longest = "a" + "\u0301" * (MAX_RECEIVED_NAME - 5) + ".txt"
    assert parse(file_fields(name=longest), 1000)[0].endswith(".txt")


@given(st.text())
def test_any_name_is_safe(name: str) -> None:
    got = safe_name(name, "image/png")
    assert got and len(got.encode("utf-8")) <= MAX_NAME_BYTES
    assert not any(c in got for c in '/\\\x00<>:"|?*')
    assert not got.startswith((".", "-", " ")) and not got.endswith((".", " "))
    assert all(unicodedata.category(c) not in {"Cc", "Cf", "Cs", "Zl", "Zp"} for c in got)
    assert got.split(".")[0].lower() not in DEVICES
    assert (Path("/downloads") / got).parent == Path("/downloads")


# -- parsing what peers send ---------------------------------------------------------------


def test_a_valid_file_parses() -> None:
    assert parse(file_fields(), 1000) == ("hi.txt", "text/plain", b"hi")
    assert parse(file_fields(contents=""), 1000) == ("hi.txt", "text/plain", b"")
    assert parse(file_fields(name="../x"), 1000)[0] == "x"
    no_name = {"FileType": "image/gif", "FileContents": "R0lG"}
    assert parse(no_name, 1000) == ("file.gif", "image/gif", b"GIF")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (file_fields(contents="!!!!"), "not base64"),
        (file_fields(contents="aGk"), "not base64"),  # padding missing
        (file_fields(contents="aGk=aGk="), "not base64"),  # padding in the middle
        (file_fields(contents="aG k="), "not base64"),
        (file_fields(contents="aGk=\n"), "not base64"),
        (file_fields(contents="-_-_"), "not base64"),  # URL-safe alphabet
        (file_fields(contents="aGé="), "not base64"),
        (file_fields(contents=5), "FileContents is not a string"),
        (file_fields(contents=["aGk="]), "FileContents is not a string"),
        ({"FileContents": "aGk="}, "without a FileType"),
        (file_fields(mime=""), "without a FileType"),
        (file_fields(mime=7), "without a FileType"),
        (file_fields(mime="not a mime type"), "not a MIME type"),
        (file_fields(mime="text/plain\n"), "not a MIME type"),
        (file_fields(name=3), "FileName is not a string"),
        ({"FileType": "text/plain"}, "without FileContents"),
        ({"FileName": "x"}, "without FileContents"),
        (file_fields(contents="A" * 2000), "larger than"),
    ],
)
def test_bad_file_fields_are_rejected_with_a_reason(fields: dict, reason: str) -> None:
    got = parse(fields, 1000)
    assert isinstance(got, RejectedFile) and reason in got.reason


@given(st.text(max_size=200) | st.binary(max_size=150).map(lambda b: base64.b64encode(b).decode()))
def test_any_contents_parse_or_are_rejected(contents: str) -> None:
    got = parse(file_fields(contents=contents), 1000)
    if not isinstance(got, RejectedFile):
        assert base64.b64encode(got[2]).decode() == contents


# -- the store -----------------------------------------------------------------------------


def test_the_store_is_bounded_by_count_and_bytes_and_never_reuses_numbers() -> None:
    store = FileStore(max_files=3, max_bytes=10, clock=lambda: 0.0)
    assert store.receive(Message.create(id="i", addr="a:1", body="no file")) is None
    numbers = []
    for _ in range(5):
        got = store.receive(file_message(**file_fields(contents="aGk=")))  # 2 bytes
        assert isinstance(got, StoredFile)
        numbers.append(got.number)
    assert numbers == [1, 2, 3, 4, 5] and [f.number for f in store.files()] == [3, 4, 5]
    big = store.receive(file_message(**file_fields(contents=base64.b64encode(b"x" * 9).decode())))
    assert isinstance(big, StoredFile) and [f.number for f in store.files()] == [6]
    assert store.nbytes == 9
    assert "no longer in memory" in store.missing(2)
    assert "no file #9" in store.missing(9)
    rejected = store.receive(file_message(**file_fields(contents="%%%%")))
    assert isinstance(rejected, RejectedFile) and store.last_number == 6


def test_file_messages_are_shown_from_what_was_received() -> None:
    stored = StoredFile(3, "cat.gif", "image/gif", b"x" * 12600)
    message = file_message(body="[file] lies.exe (1 B)")
    assert shown_body(Delivered(message, file=stored)) == (
        "[file #3] cat.gif (12.3 KiB, image/gif)  /save 3"
    )
    rejected = Delivered(message, file=RejectedFile("FileContents is not base64"))
    assert (
        shown_body(rejected) == "[file] lies.exe (1 B)  [file rejected: FileContents is not base64]"
    )


def test_autosave_counts_each_file_as_at_least_a_disk_block() -> None:
    """-downloads: empty files cost nothing, so a peer could create them without end."""
    store = FileStore()
    empty = StoredFile(1, "x", "text/plain", b"")
    saved, most = 0, AUTOSAVE_MAX_BYTES // AUTOSAVE_MIN_FILE_BYTES
    while saved <= most and store.may_autosave(empty):
        saved += 1
    assert saved == most
    big = FileStore()
    assert big.may_autosave(StoredFile(1, "x", "text/plain", b"x" * AUTOSAVE_MAX_BYTES))
    assert not big.may_autosave(empty)


# -- saving --------------------------------------------------------------------------------


def test_saving_never_overwrites(tmp_path: Path) -> None:
    first = save_in(tmp_path, "cat.gif", b"1")
    second = save_in(tmp_path, "cat.gif", b"2")
    third = save_in(tmp_path, "README", b"3")
    fourth = save_in(tmp_path, "README", b"4")
    assert [p.name for p in (first, second, third, fourth)] == [
        "cat.gif",
        "cat (1).gif",
        "README",
        "README (1)",
    ]
    assert first.read_bytes() == b"1" and second.read_bytes() == b"2"


def test_saving_does_not_follow_a_symlink(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "precious"
    target.write_bytes(b"keep me")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "cat.gif").symlink_to(target)
    path = save_in(downloads, "cat.gif", b"evil")
    assert path.name == "cat (1).gif" and target.read_bytes() == b"keep me"


def test_save_to_a_path_a_directory_or_the_downloads_dir(tmp_path: Path) -> None:
    stored = StoredFile(1, "cat.gif", "image/gif", b"GIF89a")
    chosen = save(stored, str(tmp_path / "mine.gif"), None)
    assert chosen.name == "mine.gif" and chosen.read_bytes() == b"GIF89a"
    with pytest.raises(FileError, match="exists: not overwritten"):
        save(stored, str(tmp_path / "mine.gif"), None)
    assert save(stored, str(tmp_path), None).name == "cat.gif"
    assert save(stored, None, tmp_path).name == "cat (1).gif"
    with pytest.raises(FileError, match="cannot create"):
        save(stored, str(tmp_path / "no" / "such" / "dir.gif"), None)
    with pytest.raises(FileError, match="not a directory"):
        save_in(tmp_path / "nowhere", "x", b"")


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("~no-such-user-here/cat.gif", "no such user"),  # expanduser raised RuntimeError
        ("cat\x00.gif", "cannot create"),  # os.open raised ValueError
    ],
)
def test_save_refuses_unusable_paths_with_one_line(target: str, words: str) -> None:
    stored = StoredFile(1, "cat.gif", "image/gif", b"GIF89a")
    with pytest.raises(FileError, match=words) as info:
        save(stored, target, None)
    assert "\n" not in str(info.value)


# -- sending -------------------------------------------------------------------------------


def test_prepare_reads_a_file_into_a_message(tmp_path: Path) -> None:
    path = tmp_path / "cat.gif"
    path.write_bytes(b"GIF89a" * 2100)
    out = prepare(str(path), 1 << 20)
    assert out.body == "[file] cat.gif (12.3 KiB, image/gif)"
    assert out.extra["FileName"] == "cat.gif" and out.extra["FileType"] == "image/gif"
    assert base64.b64decode(out.extra["FileContents"]) == path.read_bytes()
    odd = tmp_path / "notes.unknownext"
    odd.write_bytes(b"")
    assert prepare(str(odd), 1 << 20).extra["FileType"] == "application/octet-stream"


def test_prepare_refuses_with_one_line(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as f:
        f.truncate(max_file_size(1 << 20) + 1)  # sparse: nothing is read
    for path, words in [
        (big, "a file message must fit in 1.0 MiB, so files up to 766.5 KiB"),
        (tmp_path, "is not a regular file"),
        (tmp_path / "missing", "no such file"),
        (Path("/dev/zero"), "is not a regular file"),
        (Path("~no-such-user-here/cat.gif"), "no such user"),
    ]:
        with pytest.raises(FileError, match=words) as info:
            prepare(str(path), 1 << 20)
        assert "\n" not in str(info.value)


# -- real nodes on loopback ------------------------------------------------------------------


async def test_send_files_save_between_two_nodes(nursery, tmp_path: Path) -> None:
    a = await start_node(nursery, nick="alice")
    b = await start_node(nursery, nick="bob")
    box = await inbox(nursery, b)
    picture = tmp_path / "cat.gif"
    picture.write_bytes(bytes(range(256)) * 50)
    a.connect(b.addr)
    with trio.fail_after(TIMEOUT):
        assert (await execute(a, f"/send '{picture}'")).lines == ["sent cat.gif (12.5 KiB)"]
        await box.wait_for(lambda bodies: len(bodies) == 1)
    (event,) = box.messages
    assert event.message.body == "[file] cat.gif (12.5 KiB, image/gif)"
    assert isinstance(event.file, StoredFile) and event.file.number == 1
    assert shown_body(event) == "[file #1] cat.gif (12.5 KiB, image/gif)  /save 1"
    listing = (await execute(b, "/files")).lines
    assert "1 file(s), 12.5 KiB, in memory" in listing[0]
    assert "#1  cat.gif (12.5 KiB, image/gif)  from alice" in listing[1]
    out = tmp_path / "out"
    out.mkdir()
    assert (await execute(b, f"/save 1 {out}")).lines == [f"saved #1 as {out / 'cat.gif'}"]
    assert (await execute(b, f"/save #1 {out}")).lines == [f"saved #1 as {out / 'cat (1).gif'}"]
    assert (out / "cat.gif").read_bytes() == picture.read_bytes()
    assert (await execute(b, "/save 2")).lines == ["no file #2: /files lists them"]
    assert (await execute(b, "/save")).lines == ["usage: /save N [PATH]"]
    assert sorted(os.listdir(tmp_path)) == ["cat.gif", "out"]  # nothing written unasked


async def test_send_refuses_what_does_not_fit(nursery, tmp_path: Path) -> None:
    node = await start_node(nursery, limits=Limits(max_size=4096))
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * 3000)
    with node.subscribe() as events:
        (line,) = (await execute(node, f"/send {path}")).lines
        assert line.startswith("not sent: big.txt is 2.9 KiB: a file message must fit in 4.0 KiB")
        with pytest.raises(trio.WouldBlock):
            events.receive_nowait()
    assert (await execute(node, "/send")).lines == ["usage: /send PATH"]
    assert node.stats.sent == 0


async def _relay_two(nursery: trio.Nursery, first: dict, second: dict) -> tuple[Sink, Inbox]:
    """Send two messages on one connection to a node; wait until it has shown and relayed both."""
    node = await start_node(nursery)
    box = await inbox(nursery, node)
    s = await sink(nursery)
    node.connect(s.addr)
    conn = await origin(node)
    with trio.fail_after(TIMEOUT):
        await send(conn, first, second)
        await s.wait_for(lambda s: len(s.objects) == 2)
        await box.wait_for(lambda bodies: len(bodies) == 2)
    return s, box


async def test_bad_file_messages_still_show_and_relay(nursery) -> None:
    bad = wire("[file] x.bin (3 B, application/octet-stream)", **file_fields(contents="***"))
    hostile = wire("[file] passwd", **file_fields(name="../../etc/passwd"))
    s, box = await _relay_two(nursery, bad, hostile)
    assert s.objects == [bad, hostile]  # relayed intact, file keys and all
    first, second = box.messages
    assert isinstance(first.file, RejectedFile) and "not base64" in first.file.reason
    assert isinstance(second.file, StoredFile) and second.file.name == "passwd"


async def test_a_file_name_of_combining_marks_does_not_stall_relaying(nursery) -> None:
    """The node that froze for 91 s on this message (k=100,000) relays what follows it."""
    name = "a" + "\u0301" * 100_000 + "\u0316" * 100_000 + ".txt"
    marks = wire("[file] a.txt (2 B, text/plain)", **file_fields(name=name))
    honest = wire("an honest message after it")
    s, box = await _relay_two(nursery, marks, honest)
    assert s.bodies == [marks["Body"], honest["Body"]]
    rejected = box.messages[0].file
    assert isinstance(rejected, RejectedFile) and "longer than" in rejected.reason


async def test_downloads_dir_saves_as_files_arrive(nursery, tmp_path: Path) -> None:
    node = await start_node(nursery, files=FilesConfig(downloads=tmp_path))
    conn = await origin(node)
    with node.subscribe() as events, trio.fail_after(TIMEOUT):
        await send(conn, wire("[file] .bashrc", **file_fields(name="../.bashrc")))
        await send(conn, wire("[file] .bashrc again", **file_fields(name=".bashrc")))
        saved = []
        async for event in events:
            if isinstance(event, Notice) and event.text.startswith("saved file"):
                saved.append(event.text)
                if len(saved) == 2:
                    break
    assert sorted(os.listdir(tmp_path)) == ["bashrc", "bashrc (1)"]
    assert (tmp_path / "bashrc").read_bytes() == b"hi"


async def test_the_go_peer_shows_a_file_message_body_and_survives(nursery, tmp_path) -> None:
    node = await start_node(nursery, nick="alice")
    gopher = GoPeer("gopher")
    await nursery.start(gopher.run)
    node.connect(gopher.addr)
    path = tmp_path / "cat.gif"
    path.write_bytes(b"GIF89a")
    with trio.fail_after(TIMEOUT):
        (await execute(node, f"/send {path}"))
        await gopher.wait_for("alice: [file] cat.gif (6 B, image/gif)")
    assert not gopher.crashed
