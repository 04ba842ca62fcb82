"""Identities in the engine (``identity/stages.py``): signing, checking, DMs, channels.

Engines in one process (``engine/simnet.py``); the same over loopback TCP with real
processes is ``test_identity_e2e.py``."""

from __future__ import annotations

import pytest

from whisper.engine.simnet import SimNet, SimPeer
from whisper.identity import DMError, Identity, Trust, fingerprint, sign
from whisper.identity import stages as identity_stages
from whisper.identity.stages import IdentityConfig

ALICE, BOB, CAROL = "10.0.0.1:5", "10.0.0.2:5", "10.0.0.3:5"
ORIGIN = "10.0.0.9:5"  # a foreign peer's Addr (it refuses dials: there is no engine there)


def add(net: SimNet, addr: str, nick: str, *, identity: Identity | None = None) -> SimPeer:
    key = IdentityConfig(identity or Identity.generate())
    return net.add(addr, nick=nick, identity=key)


def trio_of_peers(net: SimNet) -> tuple[SimPeer, SimPeer, SimPeer]:
    a, b, c = add(net, ALICE, "alice"), add(net, BOB, "bob"), add(net, CAROL, "carol")
    for one, other in ((ALICE, CAROL), (CAROL, ALICE), (CAROL, BOB), (BOB, CAROL)):
        net.connect(one, other)
    return a, b, c


def shown(peer: SimPeer) -> list[tuple[str, Trust, bool, str | None]]:
    """(text, trust, direct, channel) of what the peer's front ends were shown."""
    out = []
    for e in peer.delivered:
        assert e.ident is not None
        out.append((e.ident.text, e.ident.trust, e.ident.direct, e.ident.channel))
    return out


def wire(net: SimNet, body: str, nick: str = "", **extra: object) -> dict:
    fields = {"ID": f"id-{body}", "Addr": ORIGIN, "Body": body, "Timestamp": int(net.wall() * 1000)}
    if nick:
        fields["Nick"] = nick
    return {**fields, **extra}


def test_our_messages_are_signed_and_shown_verified_elsewhere():
    net = SimNet()
    a, b, c = trio_of_peers(net)
    net.say(ALICE, "hello")
    assert shown(b) == [("hello", Trust.VERIFIED, False, None)]
    assert shown(c) == [("hello", Trust.VERIFIED, False, None)]
    own = [e for e in a.events if getattr(e, "own", False)]
    assert (
        own[0].ident.verified
        and own[0].message.fields["Key"] == a.engine.identity.identity.key_text
    )


def test_an_unsigned_message_is_shown_unsigned_never_verified():
    net = SimNet()
    b = add(net, BOB, "bob")
    conn = net.raw(BOB)
    net.write(BOB, conn, wire(net, "from go", "gopher"))
    assert shown(b) == [("from go", Trust.UNSIGNED, False, None)]


def test_a_tampered_message_is_dropped_counted_and_never_suppresses_the_real_one():
    net = SimNet()
    b = add(net, BOB, "bob")
    mallory = Identity.generate()
    genuine = sign(mallory, wire(net, "genuine", "mallory"))
    tampered = {**genuine, "Body": "changed"}
    bad_key = {**genuine, "Key": Identity.generate().key_text}
    conn = net.raw(BOB)
    net.write(BOB, conn, tampered, bad_key, genuine)
    assert shown(b) == [("genuine", Trust.VERIFIED, False, None)]  # the same ID, after them
    assert b.engine.stats.invalid == 2
    assert b.engine.identity.checker.invalid == 2


def test_a_second_key_under_a_pinned_nick_is_an_impostor():
    net = SimNet()
    b = add(net, BOB, "bob")
    conn = net.raw(BOB)
    first, second = Identity.generate(), Identity.generate()
    net.write(BOB, conn, sign(first, wire(net, "i am alice", "alice")))
    net.write(BOB, conn, sign(second, wire(net, "no, I am", "Alice")))  # folded: one nick
    assert [t for _, t, _, _ in shown(b)] == [Trust.VERIFIED, Trust.IMPOSTOR]
    assert b.delivered[1].ident.short  # the impostor's short fingerprint, for the marker
    assert b.delivered[1].ident.key == second.public


def test_our_own_nick_is_pinned_to_our_key():
    net = SimNet()
    b = add(net, BOB, "bob")
    net.say(BOB, "pins my nick")
    conn = net.raw(BOB)
    net.write(BOB, conn, sign(Identity.generate(), wire(net, "i am bob", "bob")))
    assert shown(b) == [("i am bob", Trust.IMPOSTOR, False, None)]


def test_each_message_is_verified_once_though_it_arrives_twice(monkeypatch):
    calls: list[tuple[str, str]] = []  # (peer, ID) of each verification
    real, verifying = identity_stages.verify, [""]
    monkeypatch.setattr(
        identity_stages, "verify", lambda f: calls.append((verifying[0], f["ID"])) or real(f)
    )
    net = SimNet()
    peers = trio_of_peers(net)
    for peer in peers:  # which peer's stage is verifying
        check = peer.engine.identity.checker.check
        peer.engine.identity.checker.check = (  # type: ignore[method-assign]
            lambda m, conn, now, check=check, name=peer.addr: (
                verifying.__setitem__(0, name) or check(m, conn, now)
            )
        )
    net.say(ALICE, "hello, carol and bob")
    net.say(BOB, "hello, alice and carol")  # bob has heard alice: a mesh of three now
    net.say(ALICE, "once each")
    assert sum(p.engine.stats.duplicates for p in peers) > 0  # copies arrived...
    assert len(calls) == len(set(calls)) == 6  # ... and none was verified again


def test_a_dm_is_opened_only_by_its_recipient_and_relayed_by_all():
    net = SimNet()
    a, b, c = trio_of_peers(net)
    net.say(BOB, "bob here")  # alice pins bob's key
    message, actions = a.engine.identity.direct("bob", "meet at noon", net.now)
    net._apply(a, actions)
    net.run()
    assert "meet at noon" not in message.fields.get("Body", "")
    assert shown(b)[-1] == ("meet at noon", Trust.VERIFIED, True, None)
    assert b.delivered[-1].ident.nick == "alice"
    assert all("meet at noon" not in text for text, *_ in shown(c))
    assert message.id in c.engine.seen  # carol relayed it without opening it
    own = [e for e in a.events if getattr(e, "own", False)][-1]
    assert own.ident.direct and own.ident.to == "bob" and own.ident.text == "meet at noon"


def test_a_dm_by_fingerprint_and_to_an_unknown_nick():
    net = SimNet()
    a, b, _ = trio_of_peers(net)
    net.say(BOB, "bob here")
    with pytest.raises(DMError, match="no key known for dave"):
        a.engine.identity.direct("dave", "hi", net.now)
    digits = fingerprint(b.engine.identity.identity.public)[:11]  # "12345 67890": 10 digits
    _, actions = a.engine.identity.direct(digits, "by number", net.now)
    net._apply(a, actions)
    net.run()
    assert shown(b)[-1][:3] == ("by number", Trust.VERIFIED, True)


def test_channels_are_relayed_everywhere_and_shown_only_where_joined():
    net = SimNet()
    a, b, c = trio_of_peers(net)
    a.engine.identity.channels.join("#Room")
    body, extra = a.engine.identity.compose("in the room", None)
    assert (body, extra) == ("[#room] in the room", {"Channel": "#room"})
    net.say(ALICE, body, **extra)
    assert shown(b) == [] and shown(c) == []  # relayed (below), shown nowhere
    b.engine.identity.channels.join("room")
    net.say(ALICE, "[#room] again", Channel="#room")
    assert shown(b) == [("again", Trust.VERIFIED, False, "#room")]
    assert shown(c) == []
    net.say(ALICE, "main room")
    assert shown(c) == [("main room", Trust.VERIFIED, False, None)]


def test_an_invalid_channel_is_shown_nowhere():
    net = SimNet()
    b = add(net, BOB, "bob")
    conn = net.raw(BOB)
    net.write(BOB, conn, wire(net, "bad", "x", Channel="#NO SPACES"), wire(net, "ok", "x"))
    assert [t for t, *_ in shown(b)] == ["ok"]


def test_headless_lines_carry_the_marks():
    from whisper.events import Delivered
    from whisper.headless import format_line, json_fields
    from whisper.identity.stages import Shown
    from whisper.message import Message

    key = Identity.generate().public
    message = Message.create(id="x", addr="10.0.0.9:5", body="[encrypted message]")
    dm = Delivered(message, ident=Shown(Trust.VERIFIED, key, True, None, "alice", "psst"))
    assert format_line(dm, False) == "[direct] alice: psst\n"
    fields = json_fields(dm)
    assert (fields["Body"], fields["Nick"]) == ("psst", "alice")
    assert fields["Direct"] is True and fields["Verified"] is True
    impostor = Shown(Trust.IMPOSTOR, key, False, "#room", "bob", "hi")
    line = Delivered(Message.create(id="y", addr="a:1", body="[#room] hi", nick="bob"))
    line = line._replace(ident=impostor)
    assert format_line(line, False) == f"[#room] [IMPOSTOR {impostor.short}] bob: hi\n"
    fields = json_fields(line)
    assert fields["Channel"] == "#room" and fields["Text"] == "hi"
    assert fields["Impostor"] == impostor.short and fields["Verified"] is False
