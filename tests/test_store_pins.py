"""Nick pins kept in the history store (``store/pins.py``, ``History.save_pins``): a restarted
peer still knows who was first to sign under a nick, and still marks an impostor."""

from __future__ import annotations

import trio

from whisper.identity import Identity, Trust, short_fingerprint, sign
from whisper.identity.pins import PROMOTE_AFTER, PinTable
from whisper.store import History
from whisper.store.pins import SAVE_EVERY, PinSaver, load

from .helpers import LOCAL, send, wire
from .proc import Whisper
from .test_identity_e2e import dial, json_lines

TIMEOUT = 30
ALICE, BOB, MALLORY = Identity.generate(), Identity.generate(), Identity.generate()


def table() -> PinTable:
    pins = PinTable(16)
    pins.assess("alice", ALICE.public, 1.0)
    pins.assess("alice", ALICE.public, 1.0 + PROMOTE_AFTER)  # protected now
    pins.assess("bob", BOB.public, 2.0)
    pins.pin_own("me", MALLORY.public, 3.0)
    return pins


def test_pins_saved_and_loaded_keep_their_keys_times_and_segments(tmp_path):
    saved = table()
    with History.open(tmp_path / "h") as h:
        assert h.save_pins(saved.records()) == 2  # our own pin is pinned again each run
        loaded = PinTable(16)
        assert load(h, loaded) == 2
    assert sorted(loaded.records(), key=lambda r: r["nick"]) == sorted(
        saved.records(), key=lambda r: r["nick"]
    )
    assert loaded.assess("alice", MALLORY.public, 9.0).trust is Trust.IMPOSTOR
    assert loaded.assess("bob", BOB.public, 9.0).trust is Trust.VERIFIED
    assert loaded.key_for("me") is None


def test_saving_replaces_what_was_stored(tmp_path):
    with History.open(tmp_path / "h") as h:
        h.save_pins(table().records())
        fresh = PinTable(16)
        fresh.assess("carol", BOB.public, 5.0)
        h.save_pins(fresh.records())
        assert [r["nick"] for r in h.load_pins()] == ["carol"]


def test_pins_load_least_recently_seen_first(tmp_path):
    pins = PinTable(16)
    for i, nick in enumerate(["c", "a", "b"]):
        pins.assess(nick, Identity.generate().public, 10.0 + i)
    pins.assess("c", pins.key_for("c"), 20.0)
    with History.open(tmp_path / "h") as h:
        h.save_pins(pins.records())
        assert [r["nick"] for r in h.load_pins()] == ["a", "b", "c"]


def test_the_saver_saves_only_a_changed_table(tmp_path):
    with History.open(tmp_path / "h") as h:
        pins = PinTable(16)
        saver = PinSaver(h, pins)
        saver.save_now()
        assert h.load_pins() == []
        pins.assess("alice", ALICE.public, 1.0)
        saver.save_now()
        assert [r["nick"] for r in h.load_pins()] == ["alice"]
        h.save_pins([])  # (behind its back) so that a second save would show
        saver.save_now()
        assert h.load_pins() == []


class Writer:
    """What ``PinSaver.run`` uses of a ``HistoryWriter``: ``on`` and ``call``."""

    on = True

    def __init__(self) -> None:
        self.calls = 0

    async def call(self, fn, *args):
        self.calls += 1
        return fn(*args)


async def test_the_saver_saves_every_period_while_running(tmp_path, autojump_clock):
    with History.open(tmp_path / "h") as h:
        pins, writer = PinTable(16), Writer()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(PinSaver(h, pins).run, writer)
            await trio.sleep(SAVE_EVERY * 1.5)
            assert writer.calls == 0  # nothing changed
            pins.assess("alice", ALICE.public, 1.0)
            await trio.sleep(SAVE_EVERY)
            assert writer.calls == 1 and [r["nick"] for r in h.load_pins()] == ["alice"]
            await trio.sleep(SAVE_EVERY * 3)
            assert writer.calls == 1
            nursery.cancel_scope.cancel()


def bob(tmp_path) -> Whisper:
    return Whisper(
        "-host", LOCAL, "-port", "0", "-nick", "bob", "-json",
        "-identity", str(tmp_path / "bob.key"), "-history", str(tmp_path / "bob.sqlite3"),
    )  # fmt: skip


async def test_a_restarted_peer_still_marks_an_impostor(nursery, tmp_path):
    """Over loopback: bob pins alice's key, stops; started again on the same history, a
    message signed by another key under the nick alice is marked an impostor."""
    with trio.fail_after(TIMEOUT):
        first = await bob(tmp_path).start(nursery)
        conn = await dial(first)
        await send(conn, sign(ALICE, wire("hello from alice", nick="alice")))
        await first.wait_line("stdout", "hello from alice")
        assert json_lines(first)["hello from alice"]["Verified"] is True
        await conn.aclose()
        assert await first.stop() == 0

        again = await bob(tmp_path).start(nursery)
        conn = await dial(again)
        await send(conn, sign(MALLORY, wire("i am alice", nick="alice")))
        await again.wait_line("stdout", "i am alice")
        line = json_lines(again)["i am alice"]
        assert line["Verified"] is False
        assert line["Impostor"] == short_fingerprint(MALLORY.public)
        await conn.aclose()
        await again.stop()


async def test_without_history_pins_are_forgotten_on_restart(nursery, tmp_path):
    """``-no-history``: pins live in memory only (README), so after a restart the other key
    is first to sign under the nick."""
    args = ("-host", LOCAL, "-port", "0", "-nick", "bob", "-json", "-no-history")
    key = ("-identity", str(tmp_path / "bob.key"))
    with trio.fail_after(TIMEOUT):
        first = await Whisper(*args, *key).start(nursery)
        conn = await dial(first)
        await send(conn, sign(ALICE, wire("hello from alice", nick="alice")))
        await first.wait_line("stdout", "hello from alice")
        await conn.aclose()
        await first.stop()
        again = await Whisper(*args, *key).start(nursery)
        conn = await dial(again)
        await send(conn, sign(MALLORY, wire("i am alice", nick="alice")))
        await again.wait_line("stdout", "i am alice")
        assert json_lines(again)["i am alice"]["Verified"] is True
        await conn.aclose()
        await again.stop()
