"""The capability banner and the hello on connect (PROTOCOL.md §7.10): the engine fed by
hand (``test_engine.Bench``), then nodes over loopback TCP, with the Go stand-in."""

from __future__ import annotations

import trio
import trio.testing

from whisper import Config, Delivered, Node
from whisper.engine import Dial
from whisper.engine.hello import BANNER_MAX, HELLO, PRESENCE, banner, parse_banner

from .gopeer import GoPeer
from .helpers import LOCAL, connected, inbox, linked, origin, send, start_node, wire
from .test_engine import US, Bench, bodies, msg

TIMEOUT = 10


def bodyless(objects: list[dict]) -> list[dict]:
    return [o for o in objects if not isinstance(o.get("Body"), str) or not o["Body"]]


# -- the banner -------------------------------------------------------------------------


def test_the_banner_names_what_whisper_speaks():
    assert banner() == b'{"Speaks":["hello","presence","twoway"]}\n'
    assert parse_banner(banner()) == {HELLO, PRESENCE, "twoway"}


def test_a_banner_is_whole_only_with_its_newline():
    assert parse_banner(banner()[:-1]) is None
    assert parse_banner(b"") is None


def test_anything_else_speaks_nothing():
    for junk in (b"not json\n", b"[1]\n", b'{"Speaks":"hello"}\n', b'{"ID":"x","Body":"b"}\n'):
        assert parse_banner(junk) == frozenset()
    assert parse_banner(b'{"Speaks":["hello",7,{"a":1}]}\n') == {HELLO}
    assert len(banner()) <= BANNER_MAX


# -- the engine -------------------------------------------------------------------------


def test_a_link_is_sent_the_hello_once_its_peer_has_a_banner_before_the_rest_of_the_replay():
    b = Bench()
    b.feed(b.conn(), msg("old one"), msg("old two"))
    _, actions = b.engine.connect("10.0.0.2:4", b.now)
    (dial,) = [a for a in actions if type(a) is Dial]
    b.engine.link_connected(dial.link, b.now)
    first = b.engine.data_to_send(dial.link)  # the replay starts at once: chat is safe
    b.engine.link_speaks(dial.link, frozenset({HELLO}), b.now)
    rest = b.sent(dial.link)
    assert bodies([o for o in rest if "Body" in o]) == ["old two"] and b"old one" in first
    assert rest[0] == {"Ctl": "hello", "Addr": US, "Nick": ""}


def test_a_peer_without_a_banner_is_never_sent_a_payload_without_body():
    b = Bench()
    plain = b.link("10.0.0.2:4")
    b.engine.tick(b.now + 1000)  # a presence announcement is due
    b.feed(b.conn(), {"Presence": "here", "ID": "p1", "Addr": "10.0.0.9:1", "Nick": "bob"})
    b.feed(b.conn("10.0.0.8:1"), msg("chat"))
    assert bodies(b.sent(plain)) == ["chat"] and not bodyless(b.sent(plain))


def test_a_hello_is_dialled_back_at_once():
    b = Bench()
    b.feed(b.conn(), {"Ctl": "hello", "Addr": "10.0.0.3:7", "Nick": "newcomer"})
    assert [a.link.addr for a in b.actions if type(a) is Dial] == ["10.0.0.3:7"]


def test_a_hello_with_our_own_or_no_usable_addr_dials_nothing():
    b = Bench()
    conn = b.conn()
    for addr in (US, "example.com:5", 7, "10.0.0.3:0", None):
        b.feed(conn, {"Ctl": "hello", "Addr": addr})
        assert not [a for a in b.actions if type(a) is Dial], addr
    assert conn.closed is None


# -- over loopback TCP ------------------------------------------------------------------


async def test_a_newcomer_that_only_reads_is_dialled_back_and_gets_the_backlog(nursery):
    """Issue 13: ``-peer`` and nothing said used to leave the newcomer at ``out 1 in 0``."""
    old = await start_node(nursery, nick="old")
    conn = await origin(old)
    await send(conn, wire("said before the newcomer came", addr="a peer with no address"))
    newcomer = Node(Config(host=LOCAL, port=0, nick="new", peers=[old.addr]))
    with trio.fail_after(TIMEOUT), newcomer.subscribe() as events:
        await nursery.start(newcomer.run)
        async for event in events:
            if isinstance(event, Delivered):
                break
    assert event.message.body == "said before the newcomer came" and event.history
    assert newcomer.addr in connected(old) and old.addr in connected(newcomer)


async def test_the_go_peer_is_never_sent_a_hello_and_keeps_relaying(nursery):
    go = GoPeer("gopher")
    await nursery.start(go.run)
    node = await start_node(nursery, nick="py", peers=[go.addr])
    with trio.fail_after(TIMEOUT):
        await linked(node, go.addr)
        node.set_nick("py2")  # a presence announcement, at once, to those that speak it
        node.say("hello gopher")
        await go.wait_for("py2: hello gopher")
    assert not go.crashed


async def test_a_dialler_gone_before_the_banner_is_written_ends_only_its_connection(nursery):
    """The banner is written on every accepted connection: a write that fails (the dialler
    reset at once) ends that connection's task quietly, not the node."""
    node = await start_node(nursery)
    conn, _ = node.engine.open_incoming("127.0.0.1:9", trio.current_time())
    ours, theirs = trio.testing.memory_stream_pair()
    await theirs.aclose()
    await node._read(ours, conn)  # returns: no BrokenResourceError
    box = await inbox(nursery, node)
    peer = await origin(node)
    await send(peer, wire("still serving", addr="a peer with no address"))
    with trio.fail_after(TIMEOUT):
        await box.wait_for(lambda bodies: "still serving" in bodies)
