"""Verifying a chunk's signatures in a batch, elsewhere than on the event loop.  Pure.

Rules:
- Verifying is the signed relay's cost (one Ed25519 check, about 45 us, ``signing.py``), and
  a second thread of the peer cannot take it: between two libsodium calls it must take the
  GIL back, and while the event loop runs Python it waits for it (``sys.getswitchinterval``,
  5 ms, each time: a verifying thread beside a busy loop managed 376 checks a second).  So
  the checks go to another process (``whisper/verifier.py``, the shell) a chunk at a time.
- ``prepare`` picks, from one chunk's decoded objects, the signed messages the pipeline will
  verify: not yet seen, the first of each ``ID``.  Fewer than ``MIN_BATCH`` are left to the
  ``Check`` stage (inline; a process round trip costs more than a few checks).  The event
  loop only copies out the fields ``signing.verify`` reads and pickles them (about 1.3 us a
  message; parsing them here, base64 and the signed bytes, cost 7); the other side runs
  ``signing.verify`` on each (``answer``).
- The request is the pickled list of those fields; the reply the pickled list of, for each
  message, the key that signed it (bytes: valid) or why it is invalid (a string).  Both
  come from our own code on either side (the peer's values are JSON ones), and travel framed
  by their length (``frame``, 4 bytes, big-endian).  A reply that is not such a list, of
  the right length, is not trusted: those messages are checked here.
- ``Verification.verdicts`` gives, by message ``ID``, the object the verdict is for and the
  verdict; the ``Check`` stage uses one only for that very object (a tampered copy under
  the same ``ID`` is verified on its own).  With no reply (the verifier died), every one is
  checked here instead: a message is never taken as verified without a check.
"""

from __future__ import annotations

import pickle
from collections.abc import Container, Iterable
from typing import Any

from .signing import KEY, SIG, SIGNED_FIELDS, SigStatus, Verdict, verify

MIN_BATCH = 16
FRAME_HEADER = 4
#: What ``signing.verify`` reads of a message (``Nick`` shown may come from ``omitempty``).
READ_FIELDS = (*SIGNED_FIELDS, "omitempty", SIG)


class Verification:
    """The signed messages of one chunk, waiting for their verdicts."""

    __slots__ = ("request", "waiting")

    def __init__(self, objects: Iterable[dict[str, Any]]) -> None:
        #: (ID, object) of each message, in request order.
        self.waiting = [(obj["ID"], obj) for obj in objects]
        picked = [{k: obj[k] for k in READ_FIELDS if k in obj} for _, obj in self.waiting]
        self.request = frame(pickle.dumps(picked, pickle.HIGHEST_PROTOCOL))

    def __len__(self) -> int:
        return len(self.waiting)

    @property
    def payload(self) -> bytes:
        """The request without its frame: what ``answer`` takes."""
        return self.request[FRAME_HEADER:]

    def verdicts(self, reply: bytes | None) -> dict[str, tuple[dict[str, Any], Verdict]]:
        """The verdicts, by ID, given the reply to ``request`` (None: check them here)."""
        results = _results(reply, len(self.waiting))
        if results is None:
            results = pickle.loads(answer(self.payload))
        out = {}
        for (mid, obj), result in zip(self.waiting, results, strict=True):
            if type(result) is bytes:
                out[mid] = (obj, Verdict(SigStatus.VALID, result))
            else:
                out[mid] = (obj, Verdict(SigStatus.INVALID, reason=result))
        return out


def prepare(
    objects: Iterable[dict[str, Any] | object], seen: Container[str]
) -> Verification | None:
    """The signed messages among one chunk's ``objects`` to verify in a batch, or None when
    fewer than ``MIN_BATCH`` (the ``Check`` stage verifies those itself)."""
    picked: dict[str, dict[str, Any]] = {}
    for obj in objects:
        if type(obj) is not dict or (KEY not in obj and SIG not in obj):
            continue
        mid = obj.get("ID")
        if type(mid) is str and mid and mid not in picked and mid not in seen:
            picked[mid] = obj
    return Verification(picked.values()) if len(picked) >= MIN_BATCH else None


def answer(request: bytes) -> bytes:
    """The verifier's work: for each message of ``request``, the key that signed it (valid)
    or why not (a string)."""
    verdicts = [verify(fields) for fields in pickle.loads(request)]
    return pickle.dumps(
        [v.key if v.status is SigStatus.VALID else v.reason for v in verdicts],
        pickle.HIGHEST_PROTOCOL,
    )


def _results(reply: bytes | None, n: int) -> list[bytes | str] | None:
    """The verifier's reply if it is one for ``n`` messages, else None."""
    if reply is None:
        return None
    try:
        results = pickle.loads(reply)
    except Exception:  # whatever damaged it: the messages are checked here instead
        return None
    if type(results) is not list or len(results) != n:
        return None
    if not all(type(r) is str or (type(r) is bytes and len(r) == 32) for r in results):
        return None
    return results


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(FRAME_HEADER, "big") + payload


def unframe(buffer: bytearray) -> bytes | None:
    """Take one whole frame's payload off the front of ``buffer``, or None if there is none."""
    if len(buffer) < FRAME_HEADER:
        return None
    size = int.from_bytes(buffer[:FRAME_HEADER], "big")
    if len(buffer) < FRAME_HEADER + size:
        return None
    payload = bytes(buffer[FRAME_HEADER : FRAME_HEADER + size])
    del buffer[: FRAME_HEADER + size]
    return payload
