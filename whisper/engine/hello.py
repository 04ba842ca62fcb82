"""The capability banner and the hello on connect (PROTOCOL.md §7.10).  Pure.

Rules:
- The accepting side writes ``banner()`` first on every connection it accepts: one JSON
  object, ``{"Speaks": [...]}`` and a newline.  A Go dialler never reads its outgoing
  connection, so these bytes are harmless to it; an old whisper dialler reads and discards.
- The dialling side does not wait for it: chat messages are safe for every peer, so its
  replay and queue start at once.  It parses the first ``BANNER_MAX`` bytes the peer writes
  (the shell, ``link.py``; ``parse_banner``); until a banner has arrived, and forever if none
  does (the Go peer, old whisper, anything else), the peer speaks nothing and is never sent
  a payload without ``Body`` (the Go peer crashes on one).  When it arrives, the linkers'
  payloads (hello, presence) are written next, ahead of what remains of the replay.
- ``Hello`` is the ``Linker`` that writes ``{"Ctl": "hello", "Addr", "Nick"}`` first on a
  new link to a peer that speaks ``hello``, and the ``Control`` that, receiving one, dials
  its ``Addr`` back at once (as it would for a chat message's ``Addr``, §5.1 step 8), so
  that a newcomer that only reads gets the backlog and live messages right away.
- When the engine speaks more than ``SPEAKS`` (``routing``), or asks for a two-way link
  (``twoway.py``: then with ``"Reverse": true``), the hello also says so:
  ``"Speaks": [...]``, as the banner does.  A received hello names the connection: its
  ``Addr`` and ``Speaks`` go into ``Incoming.addr`` and ``caps``; the dial-back is then the
  engine's ``may_dial`` to decide (the overlay dials no overlay peer for a hello).  The
  engine's ``refuse_speaker``, if set, may close the connection instead, saying why (the
  overlay, when its connections are at their cap).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from .. import codec
from ..addr import dialable
from . import twoway
from .twoway import TWOWAY

if TYPE_CHECKING:
    from ..peers import Peer
    from .incoming import Incoming
    from .relay import Engine

log = logging.getLogger("whisper.engine")

HELLO = "hello"
PRESENCE = "presence"
#: What whisper speaks, in its banner.
SPEAKS = (HELLO, PRESENCE, TWOWAY)
BANNER_KEY = "Speaks"
#: The most a dialler reads of a banner; a longer one is not a banner.
BANNER_MAX = 1024
MAX_CAPS = 32
CTL = "Ctl"


def banner(speaks: tuple[str, ...] = SPEAKS) -> bytes:
    return json.dumps({BANNER_KEY: list(speaks)}, separators=(",", ":")).encode() + b"\n"


def parse_banner(data: bytes) -> frozenset[str] | None:
    """The capabilities a banner names; None if ``data`` is not a whole banner (yet)."""
    line, newline, _ = data.partition(b"\n")
    if not newline:
        return None
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return frozenset()
    speaks = obj.get(BANNER_KEY) if isinstance(obj, dict) else None
    if not isinstance(speaks, list):
        return frozenset()
    return caps_of(speaks)


def caps_of(speaks: list) -> frozenset[str]:
    """The capabilities a ``Speaks`` list names (the first ``MAX_CAPS`` short strings)."""
    return frozenset(c for c in speaks[:MAX_CAPS] if isinstance(c, str) and len(c) <= 64)


def control(kind: str, addr: str, **fields: Any) -> bytes:
    """A control payload (no ``Body``) as whisper writes it."""
    return codec.encode_object({CTL: kind, "Addr": addr, **fields})


class Hello:
    """Linker and Control for the hello (see the module rules)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.received = 0  # hellos that named an Addr we may dial

    def linked(self, link: Peer, now: float) -> list[bytes]:
        if HELLO not in link.caps or not self.engine.addr:
            return []
        return [self.hello(link)]

    def hello(self, link: Peer) -> bytes:
        """Our hello for ``link`` (``Reverse`` when we cannot be dialled, twoway.py)."""
        engine = self.engine
        fields: dict[str, Any] = {"Nick": codec.well_formed(engine.nick)}
        reverse = engine.find_out.undialled and TWOWAY in link.caps
        link.asked_reverse |= reverse
        if engine.speaks != SPEAKS or reverse:  # what the link written back may carry
            fields["Speaks"] = list(engine.speaks)
        if reverse:
            fields[twoway.KEY] = True  # nobody can dial us: write to us on this connection
        return control(HELLO, engine.addr, **fields)

    def control(self, obj: dict, conn: Incoming, now: float) -> bool:
        if obj.get(CTL) != HELLO:
            return False
        addr = obj.get("Addr")
        canonical = dialable(addr) if isinstance(addr, str) else None
        if canonical is None or canonical == self.engine.addr:
            return True
        if conn.addr is None:  # the first hello names the connection for good
            conn.addr = canonical
            speaks = obj.get(BANNER_KEY)
            if isinstance(speaks, list):
                conn.caps = caps_of(speaks)
            refuse = self.engine.refuse_speaker
            if refuse is not None and (why := refuse(conn)):
                log.info("refused %s (%s): %s", conn.remote, canonical, why)
                self.engine._close(conn, why)
                return True
        self.received += 1
        wants = twoway.wants(obj) and conn.addr == canonical  # it cannot be dialled: §7.12
        if wants and twoway.adopt(self.engine, canonical, conn, now):
            return True
        may_dial = self.engine.may_dial
        if may_dial is None or may_dial(canonical, conn):
            self.engine.links.dial(canonical, now, by_user=False, spoke=True)
        return True
