"""Our identity: an Ed25519 key pair kept in a key file that only its owner can read.

Rules:
- The key file is ``identity.key`` in the per-user data directory (``platformdirs``; Linux
  ``~/.local/share/whisper-p2p``), or the path given to ``-identity PATH``.  Either way it is
  loaded if it exists and made if it does not, so several peers on one machine each get their
  own by naming their own files.
- A new key file is written whole to a temporary file (mode 0600) in the same directory and
  then linked into place, so a reader never sees half a file and two peers starting at once
  end up with the same key rather than one overwriting the other's.  A directory we create
  for it is mode 0700.
- A key file that others can read or write (any group or other permission bit), that is not
  a regular file, or that belongs to another user is refused with a one-line ``KeyFileError``
  saying what to do (``chmod 600 PATH``).  The mode is checked on the open file, not on the
  path, so the check and the read are of the same file.
- The file is text: ``#`` comment lines (the public key and fingerprint, for people) and one
  ``ed25519-seed: <base64 of the 32-byte seed>`` line.  Anything else, or a file larger than
  ``MAX_FILE`` bytes, is refused, and never overwritten: a damaged key file is the user's
  to move away.
- The seed is the secret.  From it: the Ed25519 signing key, its public key (what ``Key``
  carries) and the X25519 private key that opens direct messages (libsodium's
  ``crypto_sign_ed25519_sk_to_curve25519``), each derived once when the identity is loaded.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nacl.public
import nacl.signing
import nacl.utils
import platformdirs

from .encoding import BadEncoding, decode_b64, encode_b64
from .fingerprints import fingerprint

APP_NAME = "whisper-p2p"  # the data directory's name, as for the terminal UI's history
FILE_NAME = "identity.key"
SEED_LINE = "ed25519-seed:"
MAX_FILE = 4096
SEED_BYTES = 32


class KeyFileError(Exception):
    """The key file cannot be used; the message is one line that says what to do."""


@dataclass(frozen=True, eq=False)
class Identity:
    """A key pair: signs our messages, opens direct messages sent to us."""

    seed: bytes = field(repr=False)
    signing_key: nacl.signing.SigningKey = field(init=False, repr=False)
    public: bytes = field(init=False)
    #: Opens sealed boxes sent to our key (made once: it holds our X25519 key pair).
    unsealer: nacl.public.SealedBox = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.seed) != SEED_BYTES:
            raise ValueError("an Ed25519 seed is 32 bytes")
        signing_key = nacl.signing.SigningKey(self.seed)
        object.__setattr__(self, "signing_key", signing_key)
        object.__setattr__(self, "public", bytes(signing_key.verify_key))
        unsealer = nacl.public.SealedBox(signing_key.to_curve25519_private_key())
        object.__setattr__(self, "unsealer", unsealer)

    @classmethod
    def generate(cls) -> Identity:
        return cls(nacl.utils.random(SEED_BYTES))

    @property
    def key_text(self) -> str:
        """The public key as ``Key`` carries it (base64)."""
        return encode_b64(self.public)

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``data``."""
        return self.signing_key.sign(data).signature


def default_path() -> Path:
    return platformdirs.user_data_path(APP_NAME, appauthor=False) / FILE_NAME


def load_or_create(path: Path) -> tuple[Identity, bool]:
    """The identity in ``path``, made first if there is none; and whether it was made."""
    try:
        return load(path), False
    except FileNotFoundError:
        pass
    try:
        return create(path), True
    except FileExistsError:  # another peer made it at the same moment: use theirs
        return load(path), False


def load(path: Path) -> Identity:
    """Read a key file; FileNotFoundError if there is none, KeyFileError if it is unusable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc.strerror}") from None
    try:
        _check_private(path, os.fstat(fd))
        data = os.read(fd, MAX_FILE + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    return Identity(_parse(path, data))


def create(path: Path) -> Identity:
    """Make a new key file at ``path``; FileExistsError if one appeared meanwhile."""
    identity = Identity.generate()
    directory = path.parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".identity-", dir=directory)  # mode 0600
    except OSError as exc:
        raise KeyFileError(f"cannot make the key file {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(key_file_text(identity).encode("ascii"))
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # fails if the name exists: never overwrites a key file
    except FileExistsError:
        raise
    except OSError as exc:
        raise KeyFileError(f"cannot make the key file {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return identity


def key_file_text(identity: Identity) -> str:
    return (
        "# whisper identity: an Ed25519 key. Keep it secret: whoever has it can sign as you.\n"
        f"# public key: {identity.key_text}\n"
        f"# fingerprint: {fingerprint(identity.public)}\n"
        f"{SEED_LINE} {encode_b64(identity.seed)}\n"
    )


def _check_private(path: Path, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise KeyFileError(f"{path} is a directory: give -identity the path of a file")
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"{path} is not a regular file: give -identity the path of a key file")
    if os.name != "posix":
        return
    if st.st_uid != os.geteuid():
        raise KeyFileError(f"{path} belongs to another user (uid {st.st_uid}): use your own")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise KeyFileError(f"{path} is open to other users (mode {mode:04o}): run chmod 600 {path}")


def _parse(path: Path, data: bytes) -> bytes:
    problem = f"{path} is not a whisper key file"
    if len(data) > MAX_FILE:
        raise KeyFileError(f"{problem} (over {MAX_FILE} bytes): move it away to make a new one")
    try:
        lines = data.decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise KeyFileError(f"{problem} (not ASCII text): move it away to make a new one") from None
    seeds = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if len(seeds) != 1 or not seeds[0].startswith(SEED_LINE):
        raise KeyFileError(f"{problem} (no {SEED_LINE} line, or several): move it away")
    try:
        return decode_b64(seeds[0][len(SEED_LINE) :].strip(), SEED_BYTES, "the seed")
    except BadEncoding as exc:
        raise KeyFileError(f"{problem} ({exc}): move it away to make a new one") from None
