"""Slash commands shared by every front end, and terminal sanitising."""

from __future__ import annotations

import pytest
import trio

from whisper.codec import Limits
from whisper.commands import COMMANDS, execute
from whisper.events import Delivered
from whisper.peers import ConnectionConfig
from whisper.sanitize import for_json, for_terminal

from .helpers import inbox, linked, start_node


async def own_bodies(node, lines):
    sent = []
    with node.subscribe() as events:
        replies = [await execute(node, line) for line in lines]
        while True:
            try:
                event = events.receive_nowait()
            except trio.WouldBlock:
                break
            if isinstance(event, Delivered) and event.own:
                sent.append(event.message.body)
    return sent, replies


async def test_plain_lines_are_sent(nursery):
    node = await start_node(nursery)
    sent, replies = await own_bodies(
        node, ["hello", "  spaced  ", "", "   ", "//slash", "/me waves"]
    )
    assert sent == ["hello", "  spaced  ", "/slash", "/me waves"]
    assert all(r.lines == [] for r in replies)


async def test_help_lists_every_command(nursery):
    node = await start_node(nursery)
    reply = await execute(node, "/help")
    text = "\n".join(reply.lines)
    for name in COMMANDS:
        assert f"/{name}" in text


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("/bogus", "unknown command /bogus"),
        ("/\x1b[2Jx", "unknown command /\x1b[2Jx"),  # raw: each front end cleans it
        ("/connect", "usage: /connect HOST:PORT"),
        ("/connect nope", "not HOST:PORT"),
        ("/disconnect", "usage: /disconnect"),
        ("/disconnect 127.0.0.1:9", "no link to"),
        ("/disconnect garbage", "not HOST:PORT"),
        ("/me", "usage: /me TEXT"),
        ("/nick", "your nick is"),
        ("/nick two words", "without spaces"),
        ("/nick " + "x" * 40, "1-32"),
        ("/nick a\x07", "printable"),
        ("/nick a\u00a0b", "without spaces"),  # a no-break space is a space too
        ("/nick a\u202eb", "printable"),  # a bidi override would reorder the line
        ("/show", "usage: /show N"),
        ("/show x", "usage: /show N"),
        ("/connect 127.0.0.1:\u00b2", "not a number"),  # str.isdigit() but not int()
        ("/connect 127.0.0.1:\uff15\uff15", "not a number"),  # full-width digits
        ("/disconnect 127.0.0.1:\u00b2", "not a number"),
        ("/save \u00b2", "usage: /save N [PATH]"),
        ("/save " + "1" * 5000, "usage: /save N [PATH]"),  # int() refuses over 4,300 digits
        ("/connect 127.0.0.1:" + "9" * 5000, "port must be 1-65535"),  # and int() refuses it
    ],
)
async def test_mistakes_get_one_line_hints(nursery, line, words):
    node = await start_node(nursery)
    reply = await execute(node, line)
    assert len(reply.lines) == 1 and words in reply.lines[0]
    assert not reply.quit


async def test_show_and_help_are_left_to_the_display(nursery):
    node = await start_node(nursery)
    assert (await execute(node, "/show 3")).show == 3
    assert (await execute(node, "/show #4")).show == 4
    assert (await execute(node, "/help")).help and not (await execute(node, "/peers")).help


async def test_nick_quit_clear(nursery):
    node = await start_node(nursery)
    assert (await execute(node, "/nick phil")).lines == ["you are now phil"]
    assert node.nick == "phil"
    assert (await execute(node, "/quit")).quit
    assert (await execute(node, "/QUIT")).quit
    assert (await execute(node, "/clear")).clear


async def test_connect_and_peers(nursery):
    a = await start_node(nursery)
    b = await start_node(nursery)
    box = await inbox(nursery, b)
    assert (await execute(a, f"/connect {b.addr}")).lines == [f"connecting to {b.addr}"]
    with trio.fail_after(20):
        await linked(a, b.addr)
        (await execute(a, "sent over /connect"))
        await box.wait_for(lambda bodies: "sent over /connect" in bodies)
    lines = (await execute(a, "/peers")).lines
    assert lines[0].startswith("1 outgoing, 0 incoming")
    assert f"out {b.addr}  connected" in lines[1]
    assert any(line.startswith("  in  127.0.0.1:") for line in (await execute(b, "/peers")).lines)
    assert (await execute(a, f"/disconnect {b.addr}")).lines == []


async def test_connect_says_when_there_are_too_many_links(nursery):
    """It said 'already linked to ... (or it is us)' when the table was full."""
    node = await start_node(nursery, connections=ConnectionConfig(max_outgoing=1))
    assert (await execute(node, "/connect 127.0.0.1:9")).lines == ["connecting to 127.0.0.1:9"]
    (line,) = (await execute(node, "/connect 127.0.0.1:10")).lines
    assert line.startswith("not connecting to 127.0.0.1:10: already 1 outgoing links")
    assert (await execute(node, "/connect 127.0.0.1:9")).lines == ["already linked to 127.0.0.1:9"]
    assert (await execute(node, f"/connect {node.addr}")).lines == [
        f"{node.addr} is our own address"
    ]


async def test_too_long_message_is_refused_not_sent(nursery):
    node = await start_node(nursery, limits=Limits(max_size=4096))
    sent, replies = await own_bodies(node, ["x" * 5000])
    assert sent == [] and "too long" in replies[0].lines[0]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain", "plain"),
        ("\x1b[31mred", "␛[31mred"),
        ("\x1b]0;title\x07", "␛]0;title␇"),
        ("a\tb\r\nc", "a b␍␊c"),
        ("\x9b2J", "\ufffd2J"),
        ("\x7f", "\u2421"),
        ("\u202egnp.exe", "\ufffdgnp.exe"),
        ("\u2066iso\u2069", "\ufffdiso\ufffd"),
        ("line\u2028sep", "line\u2424sep"),
        ("日本語 😀 👩‍👩‍👧 שלום مرحبا", "日本語 😀 👩‍👩‍👧 שלום مرحبا"),
    ],
)
def test_for_terminal(text, shown):
    assert for_terminal(text) == shown


def test_for_json_escapes_what_json_leaves_raw():
    assert for_json('"\x9b\u202e\u2028é"') == '"\\u009b\\u202e\\u2028é"'


async def test_identity_commands(nursery):
    """Extension 13: /whoami, /verify, /msg, /join, /part, /channels over loopback."""
    from whisper.identity import Identity, fingerprint
    from whisper.identity.stages import IdentityConfig

    alice_key, bob_key = Identity.generate(), Identity.generate()
    alice = await start_node(nursery, nick="alice", identity=IdentityConfig(alice_key))
    bob = await start_node(nursery, nick="bob", identity=IdentityConfig(bob_key))
    box = await inbox(nursery, bob)
    alice.connect(bob.addr)
    await linked(alice, bob.addr)
    who = await execute(alice, "/whoami")
    assert who.data == fingerprint(alice_key.public) and who.data in who.lines[0]
    assert (await execute(bob, "/verify alice")).lines[0].startswith("no key pinned for alice")
    await execute(alice, "first, signed")
    await box.wait_for(lambda bodies: "first, signed" in bodies)
    verified = await execute(bob, "/verify ALICE")  # nicks are compared folded
    assert verified.data == fingerprint(alice_key.public)
    assert (await execute(bob, "/join")).lines == ["usage: /join #ROOM"]
    assert (await execute(bob, "/join #Bad Name")).lines[0].startswith("a channel is #")
    assert (await execute(bob, "/join Room")).data == "#room"
    assert (await execute(bob, "/channels")).data == ["#room"]
    assert (await execute(bob, "/part")).data == "#room"
    assert (await execute(bob, "/part")).lines[0].startswith("you are in the main room")
    assert (await execute(bob, "/channels")).data == []
    assert (await execute(alice, "/msg bob")).lines == ["usage: /msg NICK|FINGERPRINT TEXT"]
    unknown = await execute(alice, "/msg bob hello")
    assert unknown.lines[0].startswith("not sent: no key known for bob")
    spaced = fingerprint(alice_key.public)[:17]  # "12345 67890 12345": a fingerprint, spaced
    sent = await execute(bob, f"/msg {spaced} psst, alice")
    assert sent.lines == [] and sent.data.fields["Body"] == "[encrypted message]"
