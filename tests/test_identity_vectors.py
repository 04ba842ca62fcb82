"""PROTOCOL.md's identity test vectors (§7.5, §7.6), recomputed from the document's own text.

Each fenced block whose first line is ``vector NAME`` is parsed into its named values (a value
may go on over indented lines), and every derived value in it is computed again from its
inputs: the document and the code cannot drift apart.  The conformance suite's own encoder
(written from the spec, apart from whisper's) must give the same signed bytes.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import nacl.bindings
import pytest

from whisper.conformance.cases import identity as suite
from whisper.identity import dm, signing
from whisper.identity.encoding import encode_b64
from whisper.identity.fingerprints import fingerprint
from whisper.identity.keys import Identity
from whisper.ids import IdCheck, check_id
from whisper.message import Message

PROTOCOL = Path(__file__).resolve().parents[1] / "PROTOCOL.md"
_BLOCK = re.compile(r"^```\n(vector .*?)^```$", re.M | re.S)


def vectors() -> dict[str, list[tuple[str, str]]]:
    """name -> [(field, value)] in order (a field may repeat: the fingerprints block)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for block in _BLOCK.findall(PROTOCOL.read_text(encoding="utf-8")):
        pairs: list[tuple[str, str]] = []
        for line in block.splitlines():
            if line.startswith(" "):
                name, value = pairs[-1]
                pairs[-1] = (name, value + line.strip())
            else:
                name, _, value = line.partition(" ")
                pairs.append((name, value.strip()))
        (kind, name), *rest = pairs
        assert kind == "vector" and name not in found
        found[name] = rest
    return found


VECTORS = vectors()
SIGNED = [name for name in VECTORS if name.startswith("signed-")]


def test_the_document_has_the_vectors() -> None:
    assert set(VECTORS) == {"signed-chat", "signed-minimal", "signed-file", "dm", "fingerprints"}


@pytest.mark.parametrize("name", SIGNED)
def test_signed_message_vector(name: str) -> None:
    v = dict(VECTORS[name])
    identity = Identity(bytes.fromhex(v["seed"]))
    assert identity.key_text == v["Key"]
    fields = json.loads(v["wire"])
    assert fields["Key"] == v["Key"] and fields["Sig"] == v["Sig"]
    data = signing.signed_bytes(fields, identity.public)
    assert data.hex() == v["signed"]
    assert suite.signed_bytes(fields, identity.public) == data
    assert encode_b64(identity.sign(data)) == v["Sig"]  # Ed25519 signatures are deterministic
    assert signing.verify(fields).key == identity.public
    assert check_id(Message.from_wire(fields)) in (IdCheck.VALID, IdCheck.OPAQUE)


def test_dm_vector() -> None:
    v = dict(VECTORS["dm"])
    sender = Identity(bytes.fromhex(v["sender-seed"]))
    recipient = Identity(bytes.fromhex(v["recipient-seed"]))
    assert recipient.key_text == v["recipient-key"]
    converted = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(recipient.public)
    assert converted.hex() == v["x25519"]
    fields = json.loads(v["wire"])
    assert fields["Body"] == dm.PLACEHOLDER and len(fields[dm.SEALED]) == 408
    signed = dm.dm_signed_bytes(fields, v["nick"], v["text"], sender.public, recipient.public)
    assert signed.hex() == v["signed"]
    assert encode_b64(sender.sign(signed)) == v["Sig"]
    padded = recipient.unsealer.decrypt(base64.b64decode(fields[dm.SEALED]))
    inside = bytes.fromhex(v["inside"])
    assert len(padded) == 256 and padded == inside + bytes(256 - len(inside))
    assert base64.b64decode(v["Sig"]) in inside and sender.public in inside
    opened = dm.open_dm(recipient, fields)
    assert opened is not None and opened.valid
    assert (opened.sender, opened.nick, opened.text) == (sender.public, v["nick"], v["text"])
    assert dm.open_dm(sender, fields) is None


def test_fingerprint_vector() -> None:
    pairs = VECTORS["fingerprints"]
    assert len(pairs) == 4
    for (k, key), (f, digits) in zip(pairs[::2], pairs[1::2], strict=True):
        assert (k, f) == ("Key", "fingerprint")
        assert fingerprint(base64.b64decode(key)) == digits


def test_the_example_messages_in_the_text_match_the_vectors() -> None:
    """The §7.5 example is the signed-chat vector's wire line, as it is sent."""
    text = PROTOCOL.read_text(encoding="utf-8")
    assert "```json\n" + dict(VECTORS["signed-chat"])["wire"] + "\n```" in text
