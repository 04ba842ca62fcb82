"""The whispernet wire codec: unframed JSON objects in, messages out.  Sans-IO.

Feed it the bytes of one connection in whatever chunks they arrive (split mid-token,
mid-escape, mid-UTF-8 character); it hands back each complete top-level JSON object.  It
never touches a socket, a clock or trio.

Rules (PROTOCOL.md §1 is normative):

- The stream is a sequence of JSON objects with any whitespace, or none, between them.
- A top-level value that is not an object, malformed JSON, invalid UTF-8, an integer outside
  +-(2**63 - 1) or a number that is not a finite double, nesting deeper than ``max_depth``, more
  than ``max_values`` JSON values in one message, or more than ``max_size`` bytes in one
  message are *protocol violations*.  The decoder returns a `Violation` with a reason as the
  last event and is dead from then on; the caller drops the connection.
- The size of a message is counted from the end of the previous one (leading whitespace
  counts).  Limits are enforced while streaming, before a value is buffered whole: input is
  handed to the parser in slices of at most ``SLICE`` bytes and the count is checked after
  each, so a message of up to ``max_size`` bytes is always accepted and one of more than
  ``max_size + 2 * SLICE`` bytes is always refused (the bound is conservative by at most a
  slice on each side).
- ``held`` bounds the memory the message in progress holds, for the node's receive budget
  (``budget.py``).  Not its wire bytes: a string of ASCII and one emoji costs 4 bytes a
  character in Python.  It counts the parser's buffers at ``buffer_cost`` times the most
  bytes pending since the parser was made (yajl's double as a token grows and never shrink:
  2; the pure-Python backend holds decoded text twice: 8), ``VALUE_COST`` a value, and the
  strings and keys: 4 bytes a byte for a message's first ``EXACT_AFTER`` bytes, then each
  one's ``sys.getsizeof`` (sizing every string slows decoding by a third).
- After a message of more than ``RENEW_AFTER`` bytes the parser is replaced at the first
  slice that ends between messages, so that an idle connection does not keep its buffers
  (1 MiB after a 1 MiB message).  A parser that is not between messages then is inside a
  top-level value that is not an object: a violation, reported there and then.
- Floats are Python floats; duplicate keys: the last one wins.
- An escaped lone UTF-16 surrogate (a ``\\uD800``-``\\uDFFF`` escape that is not a high one
  followed at once by a low one) decodes as U+FFFD, and what follows it decodes on its own:
  ``"\\ud800\\u0041"`` is U+FFFD then ``A``, as Go's encoding/json reads it (PROTOCOL.md
  §1.3).  ``SurrogateEscapes`` rewrites each such escape to ``\\ufffd`` (as many bytes) before
  the parser sees it, so both ijson backends agree: left to yajl, that one is U+10041, a lone
  high at the end of a string ``?`` and a lone low invalid UTF-8; the Python backend keeps the
  surrogate.  Only slices holding ``\\uD8``-``\\uDF`` are rewritten (one regex pass); a
  slice keeps back at most 11 bytes that may be half of a surrogate pair.
- Encoding is compact JSON (UTF-8, no ASCII escaping) followed by ``\\n``, and always valid
  UTF-8: a lone surrogate in a string is written as U+FFFD (``well_formed``).  Raw it would be
  invalid UTF-8, and escaped (``\\udce9``) yajl finds invalid too: either way a violation
  that makes the peer drop the connection.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ijson
from ijson.utils import sendable_list

from .escapes import SurrogateEscapes
from .message import Message

DEFAULT_MAX_SIZE = 1024 * 1024
DEFAULT_MAX_DEPTH = 32
DEFAULT_MAX_VALUES = 4096
SLICE = 16 * 1024
#: Memory charged for a value that is not a string: the object and its slot in a container.
VALUE_COST = 384
#: After a message this big the parser (and its buffers) is replaced once it is between messages.
RENEW_AFTER = 64 * 1024
#: Strings are sized one by one only in messages past this many bytes; before, 4 bytes a byte.
EXACT_AFTER = 64 * 1024

#: Name of the ijson backend in use (``yajl2_c`` when the C extension is available).
BACKEND: str = ijson.backend_name if hasattr(ijson, "backend_name") else str(ijson.backend)

_PARSE_ERRORS = (ijson.JSONError, ValueError, ArithmeticError, OverflowError)


@dataclass(frozen=True, slots=True)
class Limits:
    """What one message may hold (see the rules above); ``Config.limits``."""

    max_size: int = DEFAULT_MAX_SIZE
    max_depth: int = DEFAULT_MAX_DEPTH
    max_values: int = DEFAULT_MAX_VALUES

    def decoder(self) -> Decoder:
        return Decoder(max_size=self.max_size, max_depth=self.max_depth, max_values=self.max_values)


@dataclass(frozen=True, slots=True)
class Violation:
    """The remote broke the protocol; drop the connection.  ``reason`` is for the log."""

    reason: str


class Decoder:
    """Incremental decoder for one connection's byte stream."""

    def __init__(
        self,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_values: int = DEFAULT_MAX_VALUES,
        backend: Any = None,
    ) -> None:
        self.max_size = max_size
        self.max_depth = max_depth
        self.max_values = max_values
        self._events = sendable_list()
        self._parser = backend or ijson
        self._coro = self._new_coro()
        name = getattr(self._parser, "backend_name", "")
        self.buffer_cost = 2 if name.startswith("yajl") else 8
        self._dead = False
        # Builder state for the value in progress.
        self._stack: list[Any] = []  # open containers, outermost first
        self._keys: list[str | None] = []  # pending key per open container (None for lists)
        self._values = 0
        self._escapes = SurrogateEscapes()
        # Upper bound on the bytes of the message in progress (see module docstring).
        self._pending = 0
        self._strings = 0  # sys.getsizeof of the strings and keys of the message in progress
        self._peak = 0  # the most bytes pending since the parser was made: its buffers

    def _new_coro(self) -> Any:
        return self._parser.basic_parse_coro(self._events, multiple_values=True, use_float=True)

    @property
    def in_message(self) -> bool:
        """True while a top-level object has been opened and not yet closed."""
        return bool(self._stack)

    @property
    def held(self) -> int:
        """Bytes of memory the message in progress may hold (an upper bound, module docstring)."""
        small = 4 * min(self._pending, EXACT_AFTER)
        return self.buffer_cost * self._peak + small + self._strings + self._values * VALUE_COST

    def feed(self, data: bytes) -> list[dict[str, Any] | Violation]:
        """Feed bytes; return the complete objects they finish (and maybe a final Violation)."""
        if self._dead:
            raise RuntimeError("feed() on a decoder that already reported a violation")
        out: list[dict[str, Any] | Violation] = []
        view = memoryview(data)
        for start in range(0, len(view), SLICE):
            piece = view[start : start + SLICE]
            done_before = len(out)
            exact = self._pending + len(piece) > EXACT_AFTER
            if self._parse(self._escapes.feed(bytes(piece)), out, exact):
                return out
            self._pending = len(piece) if len(out) > done_before else self._pending + len(piece)
            if self._pending > self.max_size + SLICE:
                return self._fail(out, f"message larger than {self.max_size} bytes")
            if self._pending > self._peak:
                self._peak = self._pending
            elif self._peak > RENEW_AFTER and not self._stack:
                violation = self._renew()
                if violation:
                    return self._fail(out, violation)
        return out

    def feed_eof(self) -> list[dict[str, Any] | Violation]:
        """The connection ended.  Returns a Violation if it ended inside a message."""
        if self._dead:
            return []
        out: list[dict[str, Any] | Violation] = []
        if self._parse(self._escapes.flush(), out, False):
            return out
        truncated = bool(self._stack)
        self.close()
        if truncated:
            out.append(Violation("connection closed in the middle of a message"))
        return out

    def close(self) -> None:
        """Release the parser.  Idempotent; call it when the connection goes away."""
        self._dead = True
        self._stack.clear()
        self._values = self._strings = self._peak = self._pending = 0
        with contextlib.suppress(*_PARSE_ERRORS):  # an incomplete document: already reported
            self._coro.close()

    # -- internals ---------------------------------------------------------------------

    def _parse(self, data: bytes, out: list[dict[str, Any] | Violation], exact: bool) -> bool:
        """Parse ``data`` into ``out``; True when that ended in a violation (then in ``out``)."""
        if not data:
            return False
        try:
            self._coro.send(data)
        except _PARSE_ERRORS as exc:
            self._build(out, False)  # objects completed before the error still count
            self._fail(out, f"malformed JSON: {_short(exc)}")
            return True
        violation = self._build(out, exact)
        if violation:
            self._fail(out, violation)
            return True
        return False

    def _renew(self) -> str | None:
        """Replace the parser, if it is between messages; else the violation it is in.

        Probed with ``{``: only a parser between top-level values answers with exactly a
        ``start_map``; one inside a top-level string, number or literal (a violation to come,
        since a top-level value must be an object) answers otherwise.  The probed parser is
        thrown away either way."""
        try:
            self._coro.send(b"{")
        except _PARSE_ERRORS as exc:
            return f"malformed JSON: {_short(exc)}"
        events = self._events
        between = len(events) == 1 and events[0][0] == "start_map"
        del events[:]
        if not between:
            return "top-level value is not an object"
        with contextlib.suppress(*_PARSE_ERRORS):  # the probe left it inside an object
            self._coro.close()
        self._coro = self._new_coro()
        self._peak = self._pending
        return None

    def _fail(self, out: list[dict[str, Any] | Violation], reason: str) -> list:
        self.close()
        out.append(Violation(reason))
        return out

    def _build(self, out: list[dict[str, Any] | Violation], exact: bool) -> str | None:
        """Turn parser events into objects; return a violation reason or None.

        Each value (a scalar, or a container when it opens) counts once against max_values.
        Called once per slice on every event of every message: the open container and
        whether it is a dict are kept in locals, and scalars (most events) are tested first.
        """
        events = self._events
        if not events:
            return None
        stack = self._stack
        keys = self._keys
        values = self._values
        strings = self._strings
        max_values = self.max_values
        top = stack[-1] if stack else None  # the open container values go into
        in_dict = type(top) is dict
        try:
            for event, value in events:
                if event == "map_key":
                    keys[-1] = value
                    if exact:
                        strings += _sizeof(value)
                    continue
                if event in _SCALARS:
                    values += 1
                    if values > max_values:
                        return f"more than {max_values} JSON values in one message"
                    if top is None:
                        return "top-level value is not an object"
                    if event == "string":
                        if exact:
                            strings += _sizeof(value)
                    elif event == "number" and (
                        value in _INFINITIES
                        or value != value
                        or (type(value) is int and not _INT64_MIN <= value <= _INT64_MAX)
                    ):
                        return "number out of range"
                elif event == "end_map" or event == "end_array":
                    value = stack.pop()
                    keys.pop()
                    if not stack:
                        out.append(value)
                        values = strings = 0
                        top = None
                        continue
                    top = stack[-1]
                    in_dict = type(top) is dict
                else:  # start_map, start_array
                    values += 1
                    if values > max_values:
                        return f"more than {max_values} JSON values in one message"
                    if top is None and event == "start_array":
                        return "top-level value is not an object"
                    if len(stack) >= self.max_depth:
                        return f"nested deeper than {self.max_depth} levels"
                    in_dict = event == "start_map"
                    top = {} if in_dict else []
                    stack.append(top)
                    keys.append(None)
                    continue
                if in_dict:
                    top[keys[-1]] = value  # type: ignore[index]
                else:
                    top.append(value)  # type: ignore[union-attr]
            return None
        finally:
            self._values = values
            self._strings = strings
            del events[:]


_sizeof = sys.getsizeof
_SCALARS = frozenset(("string", "number", "boolean", "null"))
_INFINITIES = (float("inf"), float("-inf"))
# yajl (ijson's C backend) refuses -2**63 as an overflow; the pure backend must agree.
_INT64_MIN, _INT64_MAX = -(2**63 - 1), 2**63 - 1


def _short(exc: BaseException) -> str:
    text = str(exc).split("\n", 1)[0].strip()
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:]
    return text[:120] or type(exc).__name__


_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _unencodable(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# JSONEncoder.encode builds a new C encoder on every call; build it once (None without _json).
_c_encode = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _unencodable, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    if getattr(json.encoder, "c_make_encoder", None) is not None
    else None
)


def encode_object(obj: Mapping[str, Any]) -> bytes:
    """Compact JSON + newline.  Done once per message; the bytes go to every peer."""
    if type(obj) is not dict:
        obj = dict(obj)
    text = "".join(_c_encode(obj, 0)) if _c_encode is not None else _encoder.encode(obj)
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (only a string holds them): see well_formed
        return (well_formed(text) + "\n").encode("utf-8")


def well_formed(text: str) -> str:
    """``text`` with any lone surrogate (an undecodable byte the terminal or argv let through)
    made U+FFFD, and surrogate pairs joined: what a peer decodes from the encoded message."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def encode(message: Message) -> bytes:
    return encode_object(message.fields)


def decode_all(data: bytes, **limits: int) -> list[dict[str, Any] | Violation]:
    """Decode a complete byte string (convenience for tests and tools)."""
    decoder = Decoder(**limits)
    return decoder.feed(data) + decoder.feed_eof()
