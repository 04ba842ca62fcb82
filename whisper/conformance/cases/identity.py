"""Level ``identity``: signed messages and direct messages (extension 13, PROTOCOL.md §7.5, §7.6).

Rules:
- Signatures are made here with PyNaCl from the encoding §7.5 writes out (``signed_bytes``),
  not with whisper's own code, so that the suite checks the spec and not our implementation
  of it (``tests/test_identity_vectors.py`` checks both against the document's vectors).
- A signed message must be relayed with ``Key``, ``Sig`` and every signed field unchanged:
  the suite verifies the copy it receives.
- Tampered signed messages are sent before the genuine one, one of them under the genuine
  one's ID: a peer that checks signatures must drop every tampered copy and still relay the
  genuine message (it checks before marking an ID seen, as for hashed IDs, §3.3).
- A direct message is relayed like any message, ``Sealed`` intact, by a peer that cannot
  open it (it is sealed to a key of the suite's).
- The level runs only when asked (``--level identity``): whisper's own peer does not check
  signatures yet.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.signing

from ..context import CaseContext, CaseFailed
from ..registry import case

DOMAIN = b"whispernet-message-v1"
DM_DOMAIN = b"whispernet-dm-v1"
SIGNED_TEXT = ("ID", "Addr", "Body")
LATER_TEXT = ("Channel", "FileName", "FileType", "FileContents")
PLACEHOLDER = "[encrypted message]"


def _item(data: bytes | None) -> bytes:
    return b"\x00" if data is None else b"\x01" + len(data).to_bytes(4, "big") + data


def _text(value: str | None) -> bytes:
    return _item(None if value is None else value.encode())


def _stamp(value: int | None) -> bytes:
    return _item(None if value is None else value.to_bytes(8, "big"))


def signed_bytes(fields: dict[str, Any], key: bytes) -> bytes:
    """PROTOCOL.md §7.5: what ``Sig`` signs."""
    nick = fields.get("Nick") or fields.get("omitempty") or ""
    parts = [_item(DOMAIN), *(_text(fields.get(k)) for k in SIGNED_TEXT), _text(nick)]
    parts += [_stamp(fields.get("Timestamp")), *(_text(fields.get(k)) for k in LATER_TEXT)]
    return b"".join([*parts, _item(key)])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sign(fields: dict[str, Any], key: nacl.signing.SigningKey) -> dict[str, Any]:
    public = bytes(key.verify_key)
    signature = key.sign(signed_bytes(fields, public)).signature
    return {**fields, "Key": b64(public), "Sig": b64(signature)}


def still_verifies(got: dict[str, Any]) -> bool:
    try:
        public = base64.b64decode(got["Key"], validate=True)
        nacl.signing.VerifyKey(public).verify(
            signed_bytes(got, public), base64.b64decode(got["Sig"], validate=True)
        )
    except (KeyError, TypeError, ValueError, nacl.exceptions.CryptoError):
        return False
    return True


def sealed_dm(ctx: CaseContext, text: str) -> dict[str, Any]:
    """A DM (§7.6) from a key of the suite's to another: no peer under test can open it."""
    sender, recipient = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    outer = ctx.message(PLACEHOLDER)
    sender_key, recipient_key = bytes(sender.verify_key), bytes(recipient.verify_key)
    signed = _item(DM_DOMAIN) + _text(outer["ID"]) + _text(outer["Addr"])
    signed += _stamp(outer["Timestamp"]) + _text("suite") + _text(text)
    signature = sender.sign(signed + _item(sender_key) + _item(recipient_key)).signature
    inside = _item(DM_DOMAIN) + _item(sender_key) + _item(signature) + _text("suite")
    inside += _text(text)
    box_key = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(recipient_key)
    padded = inside + bytes(256 - len(inside))
    return {**outer, "Sealed": b64(nacl.bindings.crypto_box_seal(padded, box_key))}


@case(
    "identity",
    "signed-relay",
    "§7.5",
    "a signed message (Key, Sig, Nick, Channel) is relayed with every signed key intact,"
    " and still verifies",
)
async def signed_relay(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    conn = await ctx.connect()
    key = nacl.signing.SigningKey.generate()
    body = "[#conformance] a signed message"
    fields = dict(ctx.message(body), Nick="suite", omitempty="suite", Channel="#conformance")
    message = sign(fields, key)
    await conn.send_obj(message)
    await ctx.settle(conn, sink, "a signed message")
    got = _intact(
        sink.first(message), message, "the signed message", "Key", "Sig", "Channel", "Nick"
    )
    if not still_verifies(got):
        raise CaseFailed("relayed the signed message, but its signature no longer verifies")
    return "relayed it with Key, Sig, Nick and Channel intact; its signature still verifies"


def _intact(
    got: dict[str, Any] | None, message: dict[str, Any], what: str, *keys: str
) -> dict[str, Any]:
    """The relayed copy, if it arrived with ``keys`` and every other key unchanged."""
    if got is None:
        raise CaseFailed(f"{what} was not relayed")
    what = what.partition(" (")[0]
    stripped = [k for k in keys if k not in got]
    if stripped:
        raise CaseFailed(f"relayed {what} with {', '.join(stripped)} stripped")
    changed = [k for k in message if got.get(k) != message[k]]
    if changed:
        raise CaseFailed(f"relayed {what} with {', '.join(changed)} changed")
    return got


def _tampered(genuine: dict[str, Any], ctx: CaseContext) -> dict[str, dict[str, Any]]:
    """Tampered copies, each under its own fresh ID but the first (under the genuine ID)."""
    sig = bytearray(base64.b64decode(genuine["Sig"]))
    sig[7] ^= 0x20
    other = b64(bytes(nacl.signing.SigningKey.generate().verify_key))
    changes: dict[str, dict[str, Any]] = {
        "Body changed": {"Body": genuine["Body"] + " (tampered)"},
        "Nick changed": {"Nick": "mallory", "omitempty": "mallory"},
        "Channel added": {"Channel": "#elsewhere"},
        "Timestamp changed": {"Timestamp": genuine["Timestamp"] + 1},
        "a bit of Sig flipped": {"Sig": b64(bytes(sig))},
        "Key of another signer": {"Key": other},
        "Sig not base64": {"Sig": "*" * 88},
        "Key without Sig": {"Sig": None},
    }
    copies = {}
    for i, (what, change) in enumerate(changes.items()):
        copy = {**genuine, **change, "ID": genuine["ID"] if i == 0 else ctx.message("")["ID"]}
        copies[what] = {k: v for k, v in copy.items() if v is not None}
    return copies


@case(
    "identity",
    "signed-tampered",
    "§7.5, §5.1",
    "signed messages whose signature does not verify (8 kinds of tampering) are dropped, and"
    " the genuine message sent after them under the same ID is relayed",
)
async def signed_tampered(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    conn = await ctx.connect()
    key = nacl.signing.SigningKey.generate()
    genuine = sign(dict(ctx.message("a signed message"), Nick="suite"), key)
    copies = _tampered(genuine, ctx)
    await conn.send_obj(*copies.values(), genuine)
    await ctx.settle(conn, sink, "tampered signed messages and the genuine one")
    relayed = [what for what, copy in copies.items() if _arrived(sink.by_id, copy)]
    if relayed:
        raise CaseFailed(
            f"relayed {len(relayed)} of {len(copies)} tampered signed messages:"
            f" {', '.join(relayed)}"
        )
    if not _arrived(sink.by_id, genuine):
        raise CaseFailed(
            "dropped the tampered copies but also the genuine message: the tampered copy's ID"
            " was marked seen before its signature was checked"
        )
    return f"dropped all {len(copies)} tampered copies; the genuine message was relayed"


def _arrived(by_id: dict[str, list[dict[str, Any]]], message: dict[str, Any]) -> bool:
    """A copy of ``message`` arrived (told apart from others under its ID by its Body)."""
    return any(got.get("Body") == message["Body"] for got in by_id.get(message["ID"], []))


@case(
    "identity",
    "dm-relay",
    "§7.6",
    "a direct message the peer cannot open is relayed like any message, Sealed and Body intact",
)
async def dm_relay(ctx: CaseContext) -> str:
    (sink,) = await ctx.sinks(1)
    conn = await ctx.connect()
    message = sealed_dm(ctx, "a secret for someone else " + secrets.token_hex(4))
    await conn.send_obj(message)
    await ctx.settle(conn, sink, "a direct message")
    _intact(sink.first(message), message, "the direct message (for another key)", "Sealed")
    return "relayed it with ID, Body, Timestamp and its 408-character Sealed intact"
