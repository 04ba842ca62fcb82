"""Presence (PROTOCOL.md §7.11): the engine fed by hand (``test_engine.Bench``), then
nodes over loopback TCP: joined, nick change, left, went quiet, ``/who``, the Go stand-in."""

from __future__ import annotations

import trio

from whisper import commands
from whisper.engine import Dial
from whisper.engine.hello import PRESENCE
from whisper.engine.presence import MISSED, PERIOD
from whisper.events import NickChanged, UserJoined, UserLeft, UserQuiet

from .gopeer import GoPeer
from .helpers import linked, start_node
from .test_engine import US, Bench

TIMEOUT = 10
BOB = "10.0.0.9:1"


def here(nick: str = "bob", mid: str = "p1", addr: str = BOB, state: str = "here") -> dict:
    return {"Presence": state, "ID": mid, "Addr": addr, "Nick": nick}


def speaking(b: Bench, addr: str):
    _, actions = b.engine.connect(addr, b.now)
    (dial,) = [a for a in actions if type(a) is Dial]
    b.engine.link_connected(dial.link, b.now)
    b.engine.link_speaks(dial.link, frozenset({PRESENCE}), b.now)
    b.sent(dial.link)  # our own announcement
    return dial.link


def presence_events(b: Bench) -> list:
    kinds = (UserJoined, UserLeft, UserQuiet, NickChanged)
    return [e for e in b.events() if isinstance(e, kinds)]


def test_an_announcement_is_a_join_and_is_flooded_to_those_that_speak_it_but_its_author():
    b = Bench()
    plain, other, author = b.link("10.0.0.2:4"), speaking(b, "10.0.0.3:4"), speaking(b, BOB)
    b.feed(b.conn(), here())
    assert presence_events(b) == [UserJoined("bob", BOB)]
    assert b.sent(other) == [here()] and b.sent(author) == [] and b.sent(plain) == []
    (you, bob) = b.engine.users(b.now)
    assert you.you and you.addr == US and (bob.nick, bob.addr, bob.linked) == ("bob", BOB, True)


def test_a_copy_is_dropped_and_not_relayed_again():
    b = Bench()
    other = speaking(b, "10.0.0.3:4")
    b.feed(b.conn(), here())
    b.sent(other)
    b.feed(b.conn("10.0.0.7:9"), here())
    assert presence_events(b) == [] and b.sent(other) == []


def test_a_new_nick_for_a_known_addr_is_a_nick_change_and_gone_is_a_leave():
    b = Bench()
    conn = b.conn()
    b.feed(conn, here())
    b.feed(conn, here("bobby", "p2"))
    assert presence_events(b) == [NickChanged("bob", "bobby", BOB)]
    b.feed(conn, here("bobby", "p3", state="gone"))
    assert presence_events(b) == [UserLeft("bobby", BOB)]
    assert [u.nick for u in b.engine.users(b.now)] == [""]


def test_a_user_not_heard_of_for_a_few_periods_went_quiet():
    b = Bench()
    b.feed(b.conn(), here())
    b.engine.tick(b.now + PERIOD * MISSED - 1)
    assert len(b.engine.users(b.now)) == 2
    _, actions = b.engine.tick(b.now + PERIOD * MISSED)
    assert [e for a in actions for e in getattr(a, "events", [])] == [UserQuiet("bob", BOB)]
    assert len(b.engine.users(b.now)) == 1


def test_bad_announcements_and_our_own_addr_are_ignored():
    b = Bench()
    conn = b.conn()
    for bad in (
        here(addr=US),
        here(addr="not an address"),
        here(nick=7),
        here(mid=""),
        here(nick="x" * 1000),
        here(state="maybe"),
        {**here(), "Padding": "x" * 3000},
    ):
        b.feed(conn, bad)
    assert presence_events(b) == [] and conn.closed is None


def test_we_announce_every_period_and_at_once_on_a_new_nick():
    b = Bench()
    link = speaking(b, "10.0.0.3:4")
    b.engine.find_out.incoming()  # someone reached us: no two-way links to find out about
    at, _ = b.engine.tick(b.now)
    assert b.sent(link) == [] and at == PERIOD  # announced at start (in speaking)
    b.engine.tick(PERIOD)
    (first,) = b.sent(link)
    b.engine.nick = "carol"
    b.engine.tick(PERIOD + 1)
    (second,) = b.sent(link)
    assert (first["Presence"], second["Nick"]) == ("here", "carol") and first["ID"] != second["ID"]
    b.engine.goodbye(PERIOD + 2)
    assert [o["Presence"] for o in b.sent(link)] == ["gone"]


def test_a_new_link_is_told_who_is_here():
    b = Bench()
    b.feed(b.conn(), here())
    _, actions = b.engine.connect("10.0.0.3:4", b.now)
    (dial,) = [a for a in actions if type(a) is Dial]
    b.engine.link_connected(dial.link, b.now)
    b.engine.link_speaks(dial.link, frozenset({PRESENCE}), b.now)
    told = b.sent(dial.link)
    assert [(o["Addr"], o["Nick"]) for o in told] == [(US, ""), (BOB, "bob")]


# -- over loopback TCP ------------------------------------------------------------------


async def test_join_nick_change_and_leave_between_two_nodes(nursery):
    alice = await start_node(nursery, nick="alice")
    with trio.fail_after(TIMEOUT):
        joined = nursery_wait(nursery, alice, UserJoined)
        bob = await start_node(nursery, nick="bob", peers=[alice.addr])
        assert await joined.get() == UserJoined("bob", bob.addr)
        await linked(alice, bob.addr)
        reply = await commands.execute(alice, "/who")
        assert reply.lines[0] == "2 online" and "bob" in reply.lines[2]
        assert "linked" in reply.lines[2] and "not linked" not in reply.lines[2]
        changed = nursery_wait(nursery, alice, NickChanged)
        await commands.execute(bob, "/nick bobby")
        assert await changed.get() == NickChanged("bob", "bobby", bob.addr)
        left = nursery_wait(nursery, alice, UserLeft)
        await bob.farewell()
        assert await left.get() == UserLeft("bobby", bob.addr)
    assert [u.nick for u in alice.users()] == ["alice"]


async def test_the_go_peer_in_the_network_is_never_sent_presence(nursery):
    go = GoPeer("gopher")
    await nursery.start(go.run)
    alice = await start_node(nursery, nick="alice", peers=[go.addr])
    with trio.fail_after(TIMEOUT):
        joined = nursery_wait(nursery, alice, UserJoined)
        bob = await start_node(nursery, nick="bob", peers=[alice.addr, go.addr])
        await joined.get()
        await linked(alice, go.addr)
        await linked(bob, go.addr)
        await bob.farewell()
        bob.say("after the goodbye")
        await go.wait_for("bob: after the goodbye")
    assert not go.crashed


class Waiter:
    def __init__(self) -> None:
        self.event = trio.Event()
        self.value = None

    async def get(self):
        await self.event.wait()
        return self.value


def nursery_wait(nursery: trio.Nursery, node, kind) -> Waiter:
    """Start waiting, from now on, for the node's first event of ``kind``."""
    waiter = Waiter()
    subscription = node.subscribe(buffer=100_000)
    events = subscription.__enter__()

    async def wait() -> None:
        try:
            async for event in events:
                if isinstance(event, kind):
                    waiter.value = event
                    waiter.event.set()
                    return
        finally:
            subscription.__exit__(None, None, None)

    nursery.start_soon(wait)
    return waiter


async def test_a_node_that_vanishes_without_goodbye_went_quiet(nursery, autojump_clock):
    alice = await start_node(nursery, nick="alice")
    with trio.fail_after(PERIOD * MISSED * 3):
        joined = nursery_wait(nursery, alice, UserJoined)
        async with trio.open_nursery() as inner:
            bob = await start_node(inner, nick="bob", peers=[alice.addr])
            await joined.get()
            quiet = nursery_wait(nursery, alice, UserQuiet)
            inner.cancel_scope.cancel()  # no goodbye: a crash, a cable pulled
        gone_at = trio.current_time()
        assert await quiet.get() == UserQuiet("bob", bob.addr)
    assert PERIOD * (MISSED - 1) <= trio.current_time() - gone_at <= PERIOD * MISSED
    assert [u.nick for u in alice.users()] == ["alice"]
