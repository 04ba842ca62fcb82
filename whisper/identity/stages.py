"""Identities in the engine (extension 13): the stages that sign, check, open and filter.

Rules (PROTOCOL.md §7.5-§7.7; ``engine/stages.py`` says where each stage runs):
- ``SignatureCheck`` (a ``Check``) verifies a message's signature once: after the seen,
  ID and freshness checks, before flood control, relaying and display.  An INVALID one is
  dropped and counted against its connection.  A message with neither ``Key`` nor ``Sig``
  costs one dict lookup each.  The key that signed the message is kept for the view of
  the same message (verify once: the view never verifies again).
  A chunk's signed messages may have been checked ahead in a batch, off the event loop
  (``prepare``, ``accept``: ``batch.py``; the shell runs the batch): the check then takes
  the verdict found for that very object in ``conn.prechecked`` instead of verifying.
- ``IdentityView`` (a ``View``) decides what front ends are shown, after relaying: a message
  with ``Sealed`` is opened (one X25519 operation when it is not ours) and shown, direct,
  only if it is for us and its inside verifies; a ``Channel`` that is invalid or not joined
  is shown nowhere (relayed all the same); every shown message gets its ``Shown``: the
  trust the pins (``pins.py``, trust on first use) give its nick and key, its channel, and
  its text without the ``[#room] `` prefix.
- ``IdentityLayer.sign`` (the engine's ``signers``) signs each message we say, in the
  channel we are in, and pins our nick to our key; ``direct`` seals a DM (``dm.py``) to a
  nick's pinned key or to a fingerprint, under a random ID.
- Pins are bounded (``pins.DEFAULT_MAX_PINS``) and kept in memory here; the history store,
  when on, loads them on start and saves them (``store/pins.py``).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from ..events import Delivered
from ..ids import random_id
from ..message import Message
from .batch import Verification, prepare
from .channels import CHANNEL, BadChannel, Channels, channel_body, channel_of
from .channels import shown_text as _shown_text
from .dm import SEALED, DMError, open_dm, seal
from .fingerprints import short_fingerprint, typed_digits
from .keys import Identity
from .pins import DEFAULT_MAX_PINS, PinTable, Trust
from .signing import KEY, SIG, SigStatus, sign, verify

if TYPE_CHECKING:
    from ..engine.actions import Action
    from ..engine.incoming import Incoming
    from ..engine.relay import Engine

_tuple = tuple.__new__  # NamedTuple(...) without its Python-level __new__: once per message


@dataclass
class IdentityConfig:
    """Extension 13 on (``Config.identity``): our key pair, and how many pins to keep."""

    identity: Identity
    max_pins: int = DEFAULT_MAX_PINS


class Shown(NamedTuple):  # once per message shown: a tuple builds faster than a dataclass
    """What extension 13 makes of a message shown: ``Delivered.ident``."""

    trust: Trust
    #: The key that signed it (a DM: the key inside); None when unsigned.
    key: bytes | None = None
    direct: bool = False
    channel: str | None = None
    #: The nick to show (a DM's is the one inside) and the text (a DM's plaintext, a
    #: channel message's without its ``[#room] `` prefix).
    nick: str = ""
    text: str = ""
    #: Our own DM: whom it is for (the nick or fingerprint typed).
    to: str = ""

    @property
    def verified(self) -> bool:
        return self.trust is Trust.VERIFIED

    @property
    def impostor(self) -> bool:
        return self.trust is Trust.IMPOSTOR

    @property
    def short(self) -> str:
        """The short fingerprint of the key ("" when unsigned)."""
        return short_fingerprint(self.key) if self.key is not None else ""


class SignatureCheck:
    """The ``Check`` stage: drop what does not verify; remember who signed the rest."""

    def __init__(self) -> None:
        self.message: Message | None = None  # the last message checked and its signer
        self.key: bytes | None = None
        self.invalid = 0
        self.batched = 0  # checks done in batches (batch.py)

    def check(self, message: Message, conn: Incoming, now: float) -> str | None:
        fields = message.fields
        if KEY not in fields and SIG not in fields:
            return None  # unsigned (the Go peer's): the view finds no key for it
        ready = conn.prechecked.pop(message.id, None) if conn.prechecked else None
        # Checked in a batch (batch.py) only counts for this very object, not a copy.
        verdict = ready[1] if ready is not None and ready[0] == fields else verify(fields)
        if verdict.status is SigStatus.INVALID:
            self.invalid += 1
            return f"bad signature: {verdict.reason}"
        self.message, self.key = message, verdict.key
        return None

    def prepare(self, objects: Sequence[Any], seen: Container[str]) -> Verification | None:
        """What of one chunk to verify in a batch, off the event loop (``batch.py``); the
        shell runs it, then gives it to ``accept`` before the pipeline takes the chunk."""
        return prepare(objects, seen)

    def accept(self, conn: Incoming, work: Verification, reply: bytes | None) -> None:
        """The verdicts of ``work`` (``reply``: the verifier's; None: check them here), for
        the ``check`` of the same objects when the pipeline reaches them."""
        conn.prechecked.update(work.verdicts(reply))
        self.batched += len(work)

    def signer(self, message: Message) -> bytes | None:
        """The key that signed ``message`` if it is the one last checked, else None."""
        return self.key if self.message is message else None


class IdentityView:
    """The ``View`` stage: open DMs, filter channels, mark trust."""

    def __init__(self, layer: IdentityLayer) -> None:
        self.layer = layer

    def view(self, event: Delivered) -> Delivered | None:
        layer = self.layer
        message = event.message
        fields = message.fields
        if SEALED in fields:
            return layer.opened(event)
        try:
            channel = channel_of(fields)
        except BadChannel:
            return None
        if channel is not None and channel not in layer.channels.joined:
            return None
        key = layer.checker.signer(message)
        if key is None:  # unsigned: no pin to look up
            trust, text = Trust.UNSIGNED, message.body
        else:
            trust = layer.pins.assess(message.nick, key, layer.clock()).trust
            text = message.body
        if channel is not None:
            text = _shown_text(channel, text)
        shown = _tuple(Shown, (trust, key, False, channel, message.nick, text, ""))
        return _tuple(Delivered, (*event[:5], shown, *event[6:]))


class IdentityLayer:
    """Our identity, the pins and channels, and the stages built on them, for one engine."""

    def __init__(self, engine: Engine, identity: Identity, max_pins: int) -> None:
        self.engine = engine
        self.identity = identity
        self.pins = PinTable(max_pins)
        self.channels = Channels()
        self.clock = engine.config.wall_clock
        self.checker = SignatureCheck()
        self.view = IdentityView(self)
        self._pinned = ""
        self.dm_invalid = 0

    def install(self) -> None:
        engine = self.engine
        engine.checks.append(self.checker)
        engine.views.append(self.view)
        engine.signers.append(self)

    # -- what we send ------------------------------------------------------------------

    def compose(self, body: str, extra: dict[str, Any] | None) -> tuple[str, dict[str, Any] | None]:
        """A typed line's ``Body`` and extension keys in the channel we are in."""
        channel = self.channels.current
        if channel is None:
            return body, extra
        return channel_body(channel, body), {**(extra or {}), CHANNEL: channel}

    def sign(self, message: Message) -> tuple[Message, Shown]:
        """The engine's signer: our message with ``Key`` and ``Sig``, and how we show it."""
        nick = message.nick
        if nick != self._pinned:
            self.pins.pin_own(nick, self.identity.public, self.clock())
            self._pinned = nick
        signed = Message.from_wire(sign(self.identity, message.fields))
        channel = signed.fields.get(CHANNEL)
        text = _shown_text(channel, signed.body)
        return signed, Shown(Trust.VERIFIED, self.identity.public, False, channel, nick, text)

    def recipient(self, target: str) -> tuple[bytes, str]:
        """The key ``/msg TARGET`` means (a pinned nick, or a fingerprint's digits) and a
        name for it; DMError saying why there is none."""
        typed = typed_digits(target)
        if typed is not None:
            pins = self.pins.by_fingerprint(typed)
            if len(pins) == 1:
                return pins[0].key, pins[0].nick
            if len(pins) > 1:
                raise DMError(f"{target} names {len(pins)} keys: type more of the fingerprint")
            raise DMError(f"no known key has the fingerprint {target}")
        key = self.pins.key_for(target)
        if key is None:
            raise DMError(f"no key known for {target}: they must have sent a signed message")
        return key, target

    def direct(self, target: str, text: str, now: float) -> tuple[Message, list[Action]]:
        """Seal ``text`` to ``target`` and send it; DMError or ValueError for the user."""
        engine = self.engine
        if not text:
            raise DMError("cannot send an empty message")
        key, name = self.recipient(target)
        if not engine.addr:
            raise RuntimeError("the node is not running")
        stamp = int(self.clock() * 1000)
        fields = seal(
            self.identity, key, id=random_id(), addr=engine.addr, timestamp=stamp,
            nick=engine.nick, text=text,
        )  # fmt: skip
        message = Message.from_wire(fields)
        shown = Shown(Trust.VERIFIED, self.identity.public, True, None, engine.nick, text, name)
        return message, engine.originate(message, now, shown)

    # -- what we are shown -------------------------------------------------------------

    def opened(self, event: Delivered) -> Delivered | None:
        opened = open_dm(self.identity, event.message.fields)
        if opened is None:
            return None  # not for us
        if not opened.valid:
            self.dm_invalid += 1
            return None
        trust = self.pins.assess(opened.nick, opened.sender, self.clock()).trust
        shown = Shown(trust, opened.sender, True, None, opened.nick, opened.text)
        return event._replace(ident=shown)


__all__ = ["IdentityConfig", "IdentityLayer", "IdentityView", "Shown", "SignatureCheck"]
