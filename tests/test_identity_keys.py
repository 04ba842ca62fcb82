"""The key file: made on first run, private, refused when others can read it, never clobbered."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from whisper.identity.fingerprints import fingerprint
from whisper.identity.keys import (
    MAX_FILE,
    Identity,
    KeyFileError,
    create,
    default_path,
    load,
    load_or_create,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_made_on_first_run_then_loaded(tmp_path: Path) -> None:
    path = tmp_path / "data" / "identity.key"
    old = os.umask(0)  # a careless umask does not widen the file
    try:
        made, created = load_or_create(path)
    finally:
        os.umask(old)
    assert created and mode(path) == 0o600 and mode(path.parent) == 0o700
    loaded, created_again = load_or_create(path)
    assert not created_again and loaded.public == made.public and loaded.seed == made.seed
    text = path.read_text()
    assert made.key_text in text and fingerprint(made.public) in text
    assert [p.name for p in path.parent.iterdir()] == ["identity.key"]  # no temporary left


def test_each_path_is_its_own_identity(tmp_path: Path) -> None:
    one, _ = load_or_create(tmp_path / "a.key")
    two, _ = load_or_create(tmp_path / "b.key")
    assert one.public != two.public


@pytest.mark.parametrize("bits", [0o644, 0o640, 0o604, 0o620, 0o602, 0o700])
def test_a_key_file_open_to_others_is_refused_with_the_fix(tmp_path: Path, bits: int) -> None:
    path = tmp_path / "identity.key"
    load_or_create(path)
    path.chmod(bits)
    if bits & 0o077 == 0:
        load(path)  # 0700: the owner's business
        return
    with pytest.raises(KeyFileError) as info:
        load_or_create(path)
    message = str(info.value)
    assert "\n" not in message and message.endswith(f"chmod 600 {path}")
    assert f"mode {bits:04o}" in message


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_a_key_file_of_another_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    load_or_create(path)
    os.chown(path, 12345, -1)
    with pytest.raises(KeyFileError, match="belongs to another user"):
        load(path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "no ed25519-seed: line"),
        (b"hello\n", "no ed25519-seed: line"),
        (b"ed25519-seed: AAAA\n", "the seed must be 44 base64 characters"),
        (b"ed25519-seed: " + b"A" * 44 + b"\ned25519-seed: x\n", "or several"),
        (b"\xff\xfe", "not ASCII text"),
        (b"#" * (MAX_FILE + 10), f"over {MAX_FILE} bytes"),
    ],
)
def test_a_damaged_key_file_is_refused_and_left_alone(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "identity.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=problem) as info:
        load_or_create(path)
    assert "move it away" in str(info.value)
    assert path.read_bytes() == content


def test_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="is a directory"):
        load_or_create(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_or_create(fifo)  # and does not block waiting for a writer


def test_a_symlink_to_a_key_file_loads(tmp_path: Path) -> None:
    made, _ = load_or_create(tmp_path / "real.key")
    (tmp_path / "link.key").symlink_to(tmp_path / "real.key")
    assert load(tmp_path / "link.key").public == made.public


def test_creating_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    first = create(path)
    with pytest.raises(FileExistsError):
        create(path)
    assert load(path).public == first.public
    assert sorted(p.name for p in tmp_path.iterdir()) == ["identity.key"]


def test_an_unwritable_directory_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(KeyFileError, match=r"the key file .*: Not a directory"):
        load_or_create(blocker / "identity.key")
    with pytest.raises(KeyFileError, match=r"cannot make the key file /sys/identity\.key: "):
        load_or_create(Path("/sys/identity.key"))  # read-only, even for root


def test_the_default_is_in_the_data_directory() -> None:
    path = default_path()
    assert path.name == "identity.key" and path.parent.name == "whisper-p2p"


def test_an_identity_derives_everything_from_its_seed() -> None:
    one, two = Identity(bytes(32)), Identity(bytes(32))
    assert one.public == two.public and one.sign(b"x") == two.sign(b"x")
    with pytest.raises(ValueError):
        Identity(b"short")
    assert one.seed.hex() not in repr(one) and str(list(one.seed)) not in repr(one)
