"""whisper.web.store: the message ring under our own cursor, and who was heard recently."""

from __future__ import annotations

from whisper.events import Delivered
from whisper.files import StoredFile
from whisper.message import Message
from whisper.web.store import MessageRing, Users, message_record, preview_type


def delivered(body: str = "hi", nick: str = "bob", **kw) -> Delivered:
    message = Message.create(id=f"id-{body}", addr="127.0.0.1:9", body=body, nick=nick)
    return Delivered(message, **kw)


def test_ring_numbers_from_one_and_pages_after_a_cursor():
    ring = MessageRing(max_entries=10)
    for i in range(5):
        ring.add(delivered(str(i)), 10)
    assert [e.seq for e in ring.after(0, 100)] == [1, 2, 3, 4, 5]
    assert [e.seq for e in ring.after(2, 2)] == [3, 4]
    assert ring.after(5, 10) == []
    assert [e.seq for e in ring.latest(2)] == [4, 5]


def test_ring_forgets_the_oldest_by_count_and_by_bytes_and_says_what_was_missed():
    ring = MessageRing(max_entries=3, max_bytes=1000)
    for i in range(5):
        ring.add(delivered(str(i)), 100)
    assert [e.seq for e in ring.after(0, 10)] == [3, 4, 5]
    assert ring.missed(0) == 2
    assert ring.missed(3) == 0
    ring.add(delivered("big"), 950)  # alone over the byte bound: kept, the rest go
    assert [e.seq for e in ring.after(0, 10)] == [6]
    assert ring.missed(1) == 4


def test_a_ring_numbered_by_the_history_keeps_its_numbers_and_pages_both_ways():
    ring = MessageRing(max_entries=10)
    ring.last_seq = 100  # the newest stored when the web began
    for seq in (101, 102, 105, 106):  # 103 and 104 went to no front end
        assert ring.add(delivered(str(seq), seq=seq), 10).seq == seq
    assert ring.add(delivered("again", seq=40), 10) is None  # stored already: not twice
    assert ring.add(delivered("105", seq=105), 10) is None
    assert [e.seq for e in ring.after(100, 10)] == [101, 102, 105, 106]
    assert [e.seq for e in ring.after(102, 10)] == [105, 106]
    assert [e.seq for e in ring.before(106, 2)] == [102, 105]
    assert [e.seq for e in ring.before(101, 5)] == []
    assert ring.add(delivered("history off now"), 10).seq == 107  # unnumbered: the next


def test_a_cursor_from_an_earlier_run_gets_everything_held():
    ring = MessageRing()
    ring.add(delivered("a"), 1)
    assert [e.seq for e in ring.after(500, 10)] == [1]
    assert ring.missed(500) == 0


def test_record_has_wire_names_and_never_file_contents():
    data = b"\x89PNG\r\n\x1a\n" + b"x" * 40
    stored = StoredFile(3, "cat.png", "image/png", data, "bob", 1.0)
    record = message_record(7, delivered("[file] cat.png", file=stored, history=True))
    assert record["Seq"] == 7 and record["Nick"] == "bob" and record["History"] is True
    assert set(record) >= {"ID", "Addr", "Nick", "Body", "Timestamp", "Own"}
    assert record["File"] == {
        "Number": 3,
        "Name": "cat.png",
        "Type": "image/png",
        "Size": 48,
        "Preview": True,
    }
    assert "FileContents" not in str(record)


def test_entry_text_is_made_once_and_is_one_line():
    ring = MessageRing()
    entry = ring.add(delivered("two\nlines"), 1)
    text = entry.text()
    assert "\n" not in text and entry.text() is text


def test_preview_only_for_safe_raster_bytes():
    assert preview_type(b"GIF89a....") == "image/gif"
    assert preview_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert preview_type(b"<svg xmlns=...") is None
    assert preview_type(b"<html><script>") is None


def test_a_frame_is_whole_lines_within_its_bounds_and_made_once_per_cursor():
    ring = MessageRing()
    for i in range(5):
        ring.add(delivered(f"m{i}"), 10)
    text, last = ring.frame(0, limit=2, max_bytes=1 << 20)
    assert last == 2 and [line.count('"Event":"message"') for line in text.split("\n")] == [1, 1]
    assert ring.frame(0, 2, 1 << 20)[0] is text
    one, last = ring.frame(2, limit=10, max_bytes=1)  # past the bytes: still one entry
    assert last == 3 and '"Body":"m2"' in one and "\n" not in one
    ring.add(delivered("m5"), 10)
    assert ring.frame(4, 10, 1 << 20)[1] == 6  # made again after an add


def test_users_are_nicks_heard_recently_from_the_network():
    now = [1000.0]
    users = Users(window=60, max_users=2, clock=lambda: now[0])
    assert users.heard(delivered(nick="bob"))
    assert not users.heard(delivered(nick="bob"))  # already listed
    assert not users.heard(delivered(nick="me", own=True))
    assert not users.heard(delivered(nick="old", history=True))
    assert not users.heard(delivered(nick="x" * 65))
    now[0] += 30
    users.heard(delivered(nick="carol"))
    users.heard(delivered(nick="dave"))  # past max_users: the least recent goes
    assert [u["Nick"] for u in users.records()] == ["dave", "carol"]
    now[0] += 61
    assert users.expire()
    assert users.records() == []


def test_a_record_carries_what_identities_made_of_the_message():
    from whisper.identity import Identity, Trust, short_fingerprint
    from whisper.identity.stages import Shown

    key = Identity.generate().public
    dm = Shown(Trust.IMPOSTOR, key, True, None, "alice", "the text inside")
    record = message_record(1, delivered("[encrypted message]", "", ident=dm))
    assert record["Body"] == "the text inside" and record["Nick"] == "alice"
    assert record["Trust"] == "impostor" and record["Verified"] is False
    assert record["Direct"] is True and record["Fingerprint"] == short_fingerprint(key)
    room = Shown(Trust.UNSIGNED, None, False, "#room", "bob", "hello")
    record = message_record(2, delivered("[#room] hello", ident=room))
    assert (record["Channel"], record["Body"], record["Trust"]) == ("#room", "hello", "unsigned")
    assert "Trust" not in message_record(3, delivered("plain"))  # identities off
