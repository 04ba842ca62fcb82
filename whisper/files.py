"""File transfer (extension 10): file messages out; received files kept in memory.  Pure.

Rules (PROTOCOL.md §7.2 is normative):

- A file message is a chat message with three more keys: ``FileName`` (a name, a hint
  only), ``FileType`` (a MIME type) and ``FileContents`` (the bytes, standard base64 with
  padding, RFC 4648 §4, no whitespace).  Its ``Body`` says in words what it is
  (``[file] cat.gif (12.3 KiB, image/gif)``), so peers without the extension show that, and
  it is never empty.  The whole message must fit the peers' size limit (1 MiB).
- Receiving: a message with any ``File*`` key is checked; a wrong type, a ``FileContents``
  without a valid ``FileType``, bad base64 or a file over the size cap makes a
  ``RejectedFile`` with a one-line reason.  The chat message itself is still shown and relayed.
- Received files are never written anywhere unasked.  ``FileStore`` keeps them in memory,
  numbered from 1 (numbers are never reused), at most ``max_files`` of them and
  ``max_bytes`` in all: past either bound the oldest are forgotten.
- Names from peers go through ``safe_name``: the last path component only, no control, format
  or separator characters, no leading dot (hidden file) or dash, no Windows device name
  (``con``, ``nul.txt`` ...), at most ``MAX_NAME_BYTES`` of UTF-8 keeping the extension,
  ``file`` plus an extension for the MIME type when nothing is left.
- The work on a name is bounded, since it runs on the event loop for every file message: a
  ``FileName`` of more than ``MAX_RECEIVED_NAME`` characters rejects the file, and a name is
  cut to ``MAX_NORMALIZED`` characters (keeping the extension) *before* it is normalised to
  NFC, which is quadratic in a run of combining marks (80,000 of them took 14 s).
- No disk I/O here: reading a file to send and saving one are ``files_io.py``.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .message import Message

NAME_KEY = "FileName"
TYPE_KEY = "FileType"
CONTENTS_KEY = "FileContents"
FILE_KEYS = frozenset((NAME_KEY, TYPE_KEY, CONTENTS_KEY))
DEFAULT_TYPE = "application/octet-stream"

DEFAULT_MAX_FILES = 100
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: Auto-saving (``-downloads``) stops after this much in one run; ``/save`` still works.
AUTOSAVE_MAX_BYTES = 256 * 1024 * 1024
#: ... counting each file as at least a disk block: empty files cost a peer nothing to send.
AUTOSAVE_MIN_FILE_BYTES = 4096
MAX_NAME_BYTES = 128
MAX_EXTENSION = 16
#: A longer ``FileName`` is absurd (a whole path is at most 4,096 bytes): the file is rejected.
MAX_RECEIVED_NAME = 4096
#: A name is cut to this many characters before NFC: enough for MAX_NAME_BYTES however the
#: marks compose, and short enough that NFC's quadratic reordering costs under a millisecond.
MAX_NORMALIZED = 4 * MAX_NAME_BYTES
MAX_TYPE = 255
#: Room left in a message for everything but FileContents when sizing what fits.
MESSAGE_OVERHEAD = 2048
MAX_FRESH_TRIES = 1000

_MIME = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
    r"(\s*;[ -~]*)?"
)
_B64 = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_WINDOWS_RESERVED = '<>:"/\\|?*'
_DEVICES = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$"}
    | {f"{p}{i}" for p in ("com", "lpt") for i in [*"0123456789", "¹", "²", "³"]}
)


@dataclass(frozen=True)
class FilesConfig:
    """``Config.files``: received files kept in memory; ``downloads``: save each one there as
    it arrives (None: only on ``/save``)."""

    max_files: int = DEFAULT_MAX_FILES
    max_bytes: int = DEFAULT_MAX_BYTES
    downloads: Path | None = None


class FileError(Exception):
    """A file cannot be sent or saved; the message is one line for the user."""


# -- sizes and descriptions -------------------------------------------------------------


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def describe(name: str, size: int, mime: str) -> str:
    """The Body of a file message."""
    return f"[file] {name} ({human_size(size)}, {mime})"


def max_file_size(max_message_size: int) -> int:
    """The largest file whose message fits in ``max_message_size`` bytes (about 3/4 of it)."""
    return max(0, (max_message_size - MESSAGE_OVERHEAD) // 4 * 3)


# -- names ------------------------------------------------------------------------------


def _unsafe(char: str) -> bool:
    return char in _WINDOWS_RESERVED or unicodedata.category(char) in {
        "Cc",
        "Cf",
        "Cs",
        "Co",
        "Cn",
        "Zl",
        "Zp",
    }


def _cut_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def _last_component(name: str) -> str:
    return name[max(name.rfind("/"), name.rfind("\\")) + 1 :]


def extension_for(mime: str) -> str:
    return mimetypes.guess_extension(mime.split(";")[0].strip().lower()) or ""


def _split_extension(name: str) -> tuple[str, str]:
    """(stem, ``.ext``) when the name has an extension worth keeping, else (name, "")."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > MAX_EXTENSION:
        return name, ""
    return stem, f".{ext}"


def safe_name(name: str, mime: str = DEFAULT_TYPE) -> str:
    """A name that is safe to create in a directory (see the module rules)."""
    name = _last_component(name)
    if len(name) > MAX_NORMALIZED:  # before NFC, which is quadratic in combining marks
        stem, suffix = _split_extension(name)
        name = stem[: MAX_NORMALIZED - len(suffix)] + suffix
    name = unicodedata.normalize("NFC", name)
    name = "".join("_" if _unsafe(c) else c for c in name)
    name = name.lstrip(" .").rstrip(" .")
    if name.startswith("-"):
        name = "_" + name[1:]
    if name.split(".")[0].rstrip(" ").lower() in _DEVICES:
        name = "_" + name
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, suffix = _split_extension(name)
        name = _cut_utf8(stem, MAX_NAME_BYTES - len(suffix.encode("utf-8"))).rstrip(" .") + suffix
    if not name.strip("._ "):
        name = "file" + extension_for(mime)
    return name


# -- sending ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outgoing:
    name: str
    size: int
    body: str
    extra: dict[str, str]


def file_message(filename: str, data: bytes, max_message_size: int) -> Outgoing:
    """What to send for ``data`` read from a file called ``filename``.  Raises ``FileError``
    when it cannot fit in one message."""
    limit = max_file_size(max_message_size)
    if len(data) > limit:
        raise FileError(too_big(filename, len(data), limit, max_message_size))
    mime = mimetypes.guess_type(filename)[0] or DEFAULT_TYPE
    name = safe_name(filename, mime)
    extra = {
        NAME_KEY: name,
        TYPE_KEY: mime,
        CONTENTS_KEY: base64.b64encode(data).decode("ascii"),
    }
    return Outgoing(name, len(data), describe(name, len(data), mime), extra)


def too_big(name: str, size: int, limit: int, max_message_size: int) -> str:
    return (
        f"{name} is {human_size(size)}: a file message must fit in "
        f"{human_size(max_message_size)}, so files up to {human_size(limit)}"
    )


# -- receiving --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredFile:
    number: int
    name: str  # safe_name'd
    mime: str
    data: bytes = field(repr=False)
    sender: str = ""
    received: float = 0.0  # wall-clock seconds

    @property
    def size(self) -> int:
        return len(self.data)

    def describe(self) -> str:
        return f"{self.name} ({human_size(self.size)}, {self.mime})"


@dataclass(frozen=True, slots=True)
class RejectedFile:
    reason: str


def has_file(fields: Mapping[str, Any]) -> bool:
    return not FILE_KEYS.isdisjoint(fields)  # on every message: no Python-level loop


def parse(fields: Mapping[str, Any], max_size: int) -> tuple[str, str, bytes] | RejectedFile:
    """(safe name, MIME type, bytes) of a file message, or why it is rejected."""
    contents = fields.get(CONTENTS_KEY)
    mime = fields.get(TYPE_KEY)
    name = fields.get(NAME_KEY, "")
    if contents is None:
        return RejectedFile(f"{TYPE_KEY} or {NAME_KEY} without {CONTENTS_KEY}")
    if not isinstance(contents, str):
        return RejectedFile(f"{CONTENTS_KEY} is not a string")
    if not isinstance(mime, str) or not mime:
        return RejectedFile(f"{CONTENTS_KEY} without a {TYPE_KEY}")
    if len(mime) > MAX_TYPE or not _MIME.fullmatch(mime):
        return RejectedFile(f"{TYPE_KEY} is not a MIME type")
    if not isinstance(name, str):
        return RejectedFile(f"{NAME_KEY} is not a string")
    if len(name) > MAX_RECEIVED_NAME:
        return RejectedFile(f"{NAME_KEY} is longer than {MAX_RECEIVED_NAME:,} characters")
    if len(contents) > (max_size + 2) // 3 * 4:
        return RejectedFile(f"larger than {human_size(max_size)}")
    raw = contents.encode("ascii", "replace")
    if not _B64.fullmatch(raw):
        return RejectedFile(f"{CONTENTS_KEY} is not base64")
    try:
        data = base64.b64decode(raw, validate=True)
    except binascii.Error:
        return RejectedFile(f"{CONTENTS_KEY} is not base64")
    if len(data) > max_size:
        return RejectedFile(f"larger than {human_size(max_size)}")
    return safe_name(name, mime), mime, data


class FileStore:
    """Received files in memory, bounded by count and bytes (see the module rules)."""

    def __init__(
        self,
        max_files: int = DEFAULT_MAX_FILES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_files = max_files
        self.max_bytes = max_bytes
        self._clock = clock
        self._files: OrderedDict[int, StoredFile] = OrderedDict()
        self._bytes = 0
        self.last_number = 0
        self.autosaved = 0

    def __len__(self) -> int:
        return len(self._files)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def files(self) -> list[StoredFile]:
        return list(self._files.values())

    def get(self, number: int) -> StoredFile | None:
        return self._files.get(number)

    def receive(self, message: Message) -> StoredFile | RejectedFile | None:
        """Take note of a chat message: None if it carries no file."""
        fields = message.fields
        if not has_file(fields):
            return None
        got = parse(fields, min(self.max_bytes, 1 << 30))
        if isinstance(got, RejectedFile):
            return got
        name, mime, data = got
        self.last_number += 1
        stored = StoredFile(self.last_number, name, mime, data, message.sender, self._clock())
        self._files[stored.number] = stored
        self._bytes += stored.size
        while len(self._files) > self.max_files or self._bytes > self.max_bytes:
            _, old = self._files.popitem(last=False)
            self._bytes -= old.size
        return stored

    def missing(self, number: int) -> str:
        """Why ``get(number)`` found nothing, in one line."""
        if 1 <= number <= self.last_number:
            return (
                f"file #{number} is no longer in memory (the last {self.max_files} files, "
                f"{human_size(self.max_bytes)} at most, are kept)"
            )
        return f"no file #{number}: /files lists them"

    def may_autosave(self, stored: StoredFile) -> bool:
        cost = max(stored.size, AUTOSAVE_MIN_FILE_BYTES)
        if self.autosaved + cost > AUTOSAVE_MAX_BYTES:
            return False
        self.autosaved += cost
        return True
