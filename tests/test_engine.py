"""The relay engine without sockets or trio: feed it objects, assert the actions and bytes.

One engine at 10.0.0.1:5, a virtual clock (``now``) and a fixed wall clock; its outgoing
links are driven by hand (``Bench.link``), and what it writes to each is decoded back.
Many engines together: ``test_simnet.py``.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import pytest

from whisper.codec import Limits, decode_all, encode_object
from whisper.config import Config
from whisper.engine import (
    CloseIncoming,
    CloseLink,
    Deliver,
    Dial,
    Engine,
    Flush,
    Incoming,
    Retry,
)
from whisper.events import (
    CLEAN_CLOSE,
    Blacklisted,
    Delivered,
    Dropped,
    GaveUp,
    PeerLinked,
    PeerLost,
)
from whisper.flood import FloodConfig
from whisper.ids import hashed_id
from whisper.peers import ConnectionConfig, Dialled, Peer

WALL = 1_800_000_000.0
US = "10.0.0.1:5"
NOWHERE = "a peer with no address"  # an Addr that is never dialled


def msg(body: str = "hi", addr: str = NOWHERE, **extra: Any) -> dict:
    obj: dict[str, Any] = {"ID": f"id-{body}-{addr}", "Addr": addr, "Body": body}
    obj["Timestamp"] = extra.pop("Timestamp", int(WALL * 1000))
    obj.update(extra)
    return obj


class Bench:
    """One engine, its incoming connections and hand-driven links."""

    def __init__(self, **config: Any) -> None:
        config.setdefault("discovery", None)
        self.engine = Engine(Config(host="10.0.0.1", wall_clock=lambda: WALL, **config))
        self.now = 0.0
        self.actions: list = self.engine.start(US, self.now)

    def conn(self, remote: str = "10.0.0.7:4000") -> Incoming:
        conn, actions = self.engine.open_incoming(remote, self.now)
        assert isinstance(conn, Incoming)
        self.actions = actions
        return conn

    def feed(self, conn: Incoming, *objects: dict | bytes) -> list:
        data = b"".join(o if isinstance(o, bytes) else encode_object(o) for o in objects)
        self.actions = self.engine.receive_data(conn, data, self.now)
        return self.actions

    def link(self, addr: str) -> Peer:
        """Dial ``addr`` as the user would and bring its connection up."""
        verdict, actions = self.engine.connect(addr, self.now)
        assert verdict is Dialled.STARTED
        (dial,) = [a for a in actions if type(a) is Dial]
        self.engine.link_connected(dial.link, self.now)
        return dial.link

    def sent(self, link: Peer) -> list[dict]:
        """Everything the link has to write, decoded (and taken)."""
        data = b""
        while chunk := self.engine.data_to_send(link):
            data += chunk
        return [o for o in decode_all(data) if isinstance(o, dict)]

    def events(self) -> list:
        return [e for a in self.actions if type(a) is Deliver for e in a.events]

    def bodies(self) -> list[str]:
        return [e.message.body for e in self.events() if type(e) is Delivered]


def bodies(objects: list[dict]) -> list[str]:
    return [o["Body"] for o in objects]


# -- the pipeline --------------------------------------------------------------------------


def test_a_message_goes_to_every_link_but_its_authors_and_a_new_addr_is_dialled():
    b = Bench()
    one, two = b.link("10.0.0.2:5"), b.link("10.0.0.3:5")
    conn = b.conn()
    actions = b.feed(conn, msg("from two", addr="10.0.0.3:5"), msg("new", addr="10.0.0.4:5"))
    assert b.bodies() == ["from two", "new"]
    dials = [a.link.addr for a in actions if type(a) is Dial]
    assert dials == ["10.0.0.4:5"]
    assert bodies(b.sent(one)) == ["from two", "new"]
    assert bodies(b.sent(two)) == ["new"]  # never back to its author
    (flush,) = [a for a in actions if type(a) is Flush]
    assert {link.addr for link in flush.links} == {"10.0.0.2:5", "10.0.0.3:5"}  # new: nothing


def test_each_link_gets_one_queue_entry_per_batch():
    b = Bench()
    one, two = b.link("10.0.0.2:5"), b.link("10.0.0.3:5")
    b.feed(b.conn(), *(msg(f"m{i}", addr="10.0.0.3:5") for i in range(300)))
    assert len(one.queue) == 300 and len(one.queue._items) == 1  # one join, one entry
    assert len(two.queue) == 0
    assert one.queue.take().count(b"\n") == 300


def test_a_link_dialled_mid_batch_is_replayed_what_came_before_and_sent_what_follows():
    """As when messages are handled one by one: the link exists from the message that
    named it, so what follows is queued live and what preceded is its backlog replay."""
    b = Bench()
    b.feed(b.conn(), msg("before"), msg("dial me", addr="10.0.0.4:5"), msg("after"))
    (dial,) = [a for a in b.actions if type(a) is Dial]
    b.engine.link_connected(dial.link, b.now)
    sent = b.sent(dial.link)
    assert [(o["Body"], o.get("History")) for o in sent] == [("before", True), ("after", None)]


def test_duplicates_and_our_own_echoes_are_dropped():
    b = Bench()
    conn = b.conn()
    b.feed(conn, msg("once"), msg("once"))
    assert b.bodies() == ["once"]
    message, _ = b.engine.say("mine", now=b.now)
    b.feed(b.conn("10.0.0.8:1"), dict(message.fields), msg("once"), msg("marker"))
    assert b.bodies() == ["marker"]
    assert b.engine.stats.duplicates == 3 and b.engine.stats.forged == 0  # an echo, not forged


def test_unknown_keys_are_relayed_intact_and_bodyless_payloads_ignored():
    b = Bench()
    link = b.link("10.0.0.2:5")
    extended = msg("extras", Zed={"deep": [1, 2.5, None, True]}, FileType="image/gif")
    b.feed(b.conn(), {"ID": "x", "Addr": "10.0.0.9:1", "Kind": "ping"}, msg("").copy(), extended)
    assert b.sent(link) == [extended]
    assert b.engine.stats.ignored == 2


def test_hash_mismatch_freshness_and_wrong_types_are_invalid_and_counted():
    b = Bench()
    conn = b.conn()
    ts = int(WALL * 1000)
    good = {"ID": hashed_id("10.0.0.9:1", "good", ts), "Addr": "10.0.0.9:1", "Body": "good"}
    good["Timestamp"] = ts
    forged = {**good, "Body": "forged"}
    b.feed(
        conn,
        forged,
        msg("seconds", Timestamp=int(WALL)),
        msg("too old", Timestamp=ts - 20 * 60 * 1000),
        msg("future", Timestamp=ts + 5 * 60 * 1000),
        {**msg("float ts"), "Timestamp": 1.5},
        {**msg("list nick"), "Nick": ["x"]},
        msg("no timestamp", Timestamp=0),
        good,  # the forged copy did not poison the seen cache
    )
    assert b.bodies() == ["seconds", "no timestamp", "good"]
    assert b.engine.stats.invalid == 5 and conn.invalid == 5 and conn.closed is None


def test_malformed_input_closes_that_connection_and_nothing_else():
    b = Bench()
    bad, good = b.conn(), b.conn("10.0.0.8:1")
    actions = b.feed(bad, msg("before"), b'{"ID":"1",,}', msg("never"))
    assert b.bodies() == ["before"]
    assert [type(a) for a in actions] == [Deliver, CloseIncoming]
    assert isinstance(b.events()[-1], Dropped) and bad.closed.startswith("malformed JSON")
    assert b.feed(bad, msg("later")) == []  # closed: whatever else arrives is discarded
    b.feed(good, msg("still relayed"))
    assert b.bodies() == ["still relayed"]


def test_a_message_split_across_chunks_and_one_truncated_at_eof():
    b = Bench()
    conn = b.conn()
    data = encode_object(msg("split"))
    b.feed(conn, data[:7])
    assert b.actions == []
    b.feed(conn, data[7:] + b'{"ID":"ha')
    assert b.bodies() == ["split"]
    actions = b.engine.receive_data(conn, b"", b.now)
    assert type(actions[-1]) is CloseIncoming and "middle of a message" in conn.closed


def test_too_long_message_of_ours_is_refused_before_anything_happens():
    b = Bench(limits=Limits(max_size=2048))
    with pytest.raises(ValueError, match="too long"):
        b.engine.say("x" * 3000, now=b.now)
    assert b.engine.stats.sent == 0


# -- extension points --------------------------------------------------------------------


class RejectOdd:
    def check(self, message, conn, now):
        return "odd" if message.body.endswith(("1", "3")) else None


class Swallow:
    def __init__(self) -> None:
        self.taken: list[dict] = []

    def control(self, obj, conn, now):
        if obj.get("Kind") != "presence":
            return False
        self.taken.append(obj)
        return True


class Keep:
    def __init__(self) -> None:
        self.kept: list[tuple[str, bool]] = []

    def keep(self, messages, own, now):
        self.kept += [(message.body, own) for message, size in messages]


class HideSecrets:
    def view(self, event):
        return None if event.message.body.startswith("secret") else event


def test_stages_check_control_keep_and_view():
    b = Bench()
    link = b.link("10.0.0.2:5")
    swallow, keep = Swallow(), Keep()
    b.engine.checks.append(RejectOdd())
    b.engine.controls.append(swallow)
    b.engine.keepers.append(keep)
    b.engine.views.append(HideSecrets())
    b.engine.say("ours", now=b.now)
    b.feed(
        b.conn(),
        *(msg(f"m{i}") for i in range(4)),
        {"ID": "p", "Addr": "10.0.0.9:1", "Kind": "presence"},
        {"ID": "q", "Addr": "10.0.0.9:1", "Kind": "unknown"},
        msg("secret plans"),
    )
    assert b.bodies() == ["m0", "m2"]  # the secret is not shown ...
    assert bodies(b.sent(link)) == ["ours", "m0", "m2", "secret plans"]  # ... but relayed
    assert keep.kept == [("ours", True), ("m0", False), ("m2", False), ("secret plans", False)]
    assert [o["ID"] for o in swallow.taken] == ["p"]
    assert b.engine.stats.invalid == 2 and b.engine.stats.ignored == 1


class EvenLinksOnly:
    """A router that sends every payload only to links on even ports."""

    def route(self, batch, links):
        parts = [r.data for r in batch]
        return [(link, parts) for addr, link in links.items() if int(addr[-1]) % 2 == 0]


def test_a_router_decides_which_links_get_a_batch():
    b = Bench()
    even, odd = b.link("10.0.0.2:4"), b.link("10.0.0.3:5")
    b.engine.router = EvenLinksOnly()
    b.feed(b.conn(), msg("a"), msg("b"))
    assert bodies(b.sent(even)) == ["a", "b"] and b.sent(odd) == []


def test_a_control_payload_goes_only_to_links_that_speak_it():
    b = Bench()
    plain = b.link("10.0.0.2:5")
    _, actions = b.engine.connect("10.0.0.3:5", b.now)
    (dial,) = [a for a in actions if type(a) is Dial]
    b.engine.link_connected(dial.link, b.now, caps=frozenset({"x-test"}))
    hello = encode_object({"ID": "h", "Addr": US, "Kind": "x-test"})
    b.engine.send(hello, b.now, needs="x-test")
    assert b.sent(plain) == [] and b.sent(dial.link) == [decode_all(hello)[0]]


# -- links -------------------------------------------------------------------------------


def test_a_link_is_replayed_first_on_each_connection_and_only_what_its_queue_lacks():
    b = Bench()
    b.engine.say("m1", now=b.now)
    link = b.link("10.0.0.2:5")
    assert [(o["Body"], o.get("History")) for o in b.sent(link)] == [("m1", True)]
    b.engine.say("m2", now=b.now)
    assert bodies(b.sent(link)) == ["m2"]
    actions = b.engine.link_failed(link, "peer closed the connection", b.now)
    assert [type(e) for a in actions if type(a) is Deliver for e in a.events] == [PeerLost]
    (retry,) = [a for a in actions if type(a) is Retry]
    b.engine.say("m3", now=b.now)  # queued while it is down
    b.engine.link_redial(link, retry.at)
    actions = b.engine.link_connected(link, retry.at)
    assert [type(e) for a in actions if type(a) is Deliver for e in a.events] == [PeerLinked]
    sent = [(o["Body"], o.get("History")) for o in b.sent(link)]
    assert sent == [("m1", True), ("m2", True), ("m3", None)]


def test_a_link_that_keeps_failing_is_given_up_and_closed():
    b = Bench(connections=ConnectionConfig(max_failures=3))
    _, actions = b.engine.connect("10.0.0.2:5", b.now)
    (dial,) = [a for a in actions if type(a) is Dial]
    kinds = []
    for _ in range(3):
        actions = b.engine.link_failed(dial.link, "connection refused", b.now)
        kinds.append([type(a) for a in actions])
    assert kinds[:2] == [[Retry], [Retry]]
    assert kinds[2] == [Deliver, CloseLink]
    assert isinstance(actions[0].events[0], GaveUp)
    assert b.engine.peers(b.now) == []


def test_connect_says_why_not():
    b = Bench(connections=ConnectionConfig(max_outgoing=1))
    assert b.engine.connect(US, b.now)[0] is Dialled.OURSELVES
    assert b.engine.connect("10.0.0.2:5", b.now)[0] is Dialled.STARTED
    assert b.engine.connect("10.0.0.2:5", b.now)[0] is Dialled.ALREADY
    assert b.engine.connect("10.0.0.3:5", b.now)[0] is Dialled.FULL
    done, actions = b.engine.disconnect("10.0.0.2:5", b.now)
    assert done and [type(a) for a in actions] == [Deliver, CloseLink]
    assert b.engine.learned("10.0.0.2:5", b.now)[0] is False  # not redialled for a while


def test_the_user_may_close_an_incoming_connection_too():
    b = Bench()
    conn = b.conn("10.0.0.7:4000")
    done, actions = b.engine.disconnect("10.0.0.7:4000", b.now)
    assert done and conn.closed == "disconnected by the user"
    assert [type(a) for a in actions] == [Deliver, CloseIncoming]
    assert actions[0].events[0].text == "disconnected from 10.0.0.7:4000"
    assert b.engine.peers(b.now) == []
    assert b.engine.disconnect("10.0.0.7:4000", b.now)[0] is False


def test_a_flooder_is_cut_its_host_blacklisted_and_the_links_to_it_closed():
    """PROTOCOL.md §7.4: over its own budget a connection pays penalty points; out of
    credit it is cut, and its host is blacklisted: not dialled, links to it closed."""
    tiny = FloodConfig(conn_start=5, conn_burst=5, penalty_limit=5)
    b = Bench(flood=tiny)
    conn = b.conn("10.0.0.7:4000")
    actions = b.feed(conn, *(msg(f"flood {i}", addr="10.0.0.7:5") for i in range(50)))
    assert conn.closed is not None and b.bodies() == [f"flood {i}" for i in range(5)]
    (cut,) = [e for e in b.events() if isinstance(e, Blacklisted)]
    assert cut.host == "10.0.0.7" and cut.remote == "10.0.0.7:4000"
    closed = [a for a in actions if type(a) in (CloseIncoming, CloseLink)]
    assert [type(a) for a in closed] == [CloseIncoming, CloseLink]  # it had been dialled back
    assert closed[1].link.addr == "10.0.0.7:5"
    assert b.engine.connect("10.0.0.7:6", b.now)[0] is Dialled.BLACKLISTED
    assert b.engine.stats.over_limit == 7  # one excused (the host's spare was spent), six points


def test_a_message_with_our_own_addr_that_we_never_sent_is_a_forgery():
    b = Bench(flood=FloodConfig())
    conn = b.conn()
    b.feed(conn, msg("not mine", addr=US), msg("marker"))
    assert b.bodies() == ["marker"] and b.engine.stats.forged == 1 and conn.invalid == 1


def test_a_connection_out_of_work_tokens_is_paced_not_read_and_resumed():
    b = Bench(flood=FloodConfig(conn_rate=50))  # 200 objects a second, 40 at once
    conn = b.conn()
    b.feed(conn, *(msg(f"m{i}") for i in range(100)))
    assert len(b.bodies()) == 40 and conn.resume_at is not None and len(conn.pending) == 60
    assert b.engine.receive_data(conn, b"", b.now) == [] or conn.pending  # held, not lost
    b.now = conn.resume_at
    actions = b.engine.resume(conn, b.now)
    delivered = [e for a in actions if type(a) is Deliver for e in a.events]
    assert delivered and delivered[0].message.body == "m40"  # in order, from where it stopped


def test_importing_the_engine_pulls_in_no_trio():
    code = "import sys, whisper.engine, whisper.engine.simnet; print('trio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_our_messages_carry_both_nick_keys_our_addr_and_a_hashed_id():
    b = Bench(nick="me")
    link = b.link("10.0.0.2:5")
    b.engine.say("mine", now=b.now)
    (sent,) = b.sent(link)
    assert sent["Nick"] == sent["omitempty"] == "me" and sent["Addr"] == US
    assert sent["ID"] == hashed_id(US, "mine", sent["Timestamp"])
    assert sent["Timestamp"] == int(WALL * 1000)


def test_one_link_per_peer_however_its_addr_is_spelt_and_none_to_us():
    b = Bench()
    spellings = [f"10.0.0.2:{'0' * k}5" for k in range(1, 6)]
    spellings += [" 10.0.0.2:5", "\x1c10.0.0.2:5\x1f", "10.0.0.2:5"]
    spellings += ["[::1%\x1b[2J]:5", "[fe80::1%eth0]:5"]  # a scope is the sender's
    ours = ["10.0.0.1:05", f" {US}"]  # never dialled: forgeries, dropped
    b.feed(b.conn(), *(msg(f"as {i}", addr=a) for i, a in enumerate(ours + spellings)))
    assert [a.link.addr for a in b.actions if type(a) is Dial] == ["10.0.0.2:5"]
    assert len(b.bodies()) == len(spellings) and b.engine.stats.forged == len(ours)


def test_a_peer_spelling_its_addr_oddly_is_not_sent_its_own_messages():
    """PROTOCOL.md §5.1 step 7 and §7.3: not relayed, nor replayed, to the peer whose Addr
    it is."""
    b = Bench()
    conn = b.conn()
    b.feed(conn, msg("mine, replayed?", addr="10.0.0.2:05"))  # dials 10.0.0.2:5
    (dial,) = [a for a in b.actions if type(a) is Dial]
    b.engine.link_connected(dial.link, b.now)
    b.feed(conn, msg("mine, relayed?", addr="10.0.0.2:0005"), msg("marker"))
    assert bodies(b.sent(dial.link)) == ["marker"]


def test_a_peer_that_closes_cleanly_is_no_warning(caplog):
    """Issue 13: link-level events are not chat; a clean close (EOF) is not a WARNING,
    nor the retries of a link that was up."""
    b = Bench()
    link = b.link("10.0.0.2:4")
    with caplog.at_level(logging.INFO, logger="whisper.engine"):
        actions = b.engine.link_failed(link, CLEAN_CLOSE, b.now)
    lost = [e for a in actions if type(a) is Deliver for e in a.events]
    assert lost == [PeerLost("10.0.0.2:4", CLEAN_CLOSE)] and not lost[0].warning
    assert PeerLost("10.0.0.2:4", "connection reset by peer").warning
    assert [r.levelno for r in caplog.records] == [logging.INFO]
