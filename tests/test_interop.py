"""Two whisper processes and a Go peer exchange messages, each shown once.

The first test uses the stand-in (``gopeer.GoPeer``) on loopback.  The others run the real Go
reference peer (``$WHISPER_GO_PEER``, else skipped) with whisper processes inside a lab
namespace (``netns.py``) that has a LAN address of its own, 10.77.0.1: the Go peer binds it and
broadcasts its discovery datagram, and neither leaves the namespace.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

from .gopeer import GoPeer, RealGoPeer, go_peer_binary
from .netns import InNamespace, explained, lab, whisper_in
from .proc import Whisper

LOOPBACK = ["-host", "127.0.0.1", "-port", "0", "-headless"]
LAN_IP = "10.77.0.1"
#: A message that may reach a peer both directly (signed) and through the Go peer (which
#: strips Key and Sig) is shown as whichever copy came first: unsigned, or verified.
MAYBE_UNSIGNED = r"^(\[unsigned\] )?"


def signed_or_not(line: str) -> str:
    """A line shown, without the mark of a copy that came through the Go peer."""
    return line.removeprefix("[unsigned] ")


ON_LAN = ["-host", LAN_IP, "-port", "0", "-headless"]


@pytest.mark.parametrize("routing", ["overlay", "flood"])
async def test_two_whisper_processes_and_a_go_peer(nursery, routing):
    with trio.fail_after(30):
        flags = [*LOOPBACK, "-routing", routing]
        alice = await Whisper(*flags, "-nick", "alice").start(nursery)
        bob = await Whisper(*flags, "-nick", "bob", "-peer", alice.addr).start(nursery)
        gopher = GoPeer("gopher")
        await nursery.start(gopher.run, bob.addr)
        await bob.wait_line("stderr", f"connected to {alice.addr}")
        await alice.wait_line("stderr", "^bob joined$")  # presence: never sent to Go

        gopher.say("hello from <go> & friends")  # Go escapes <>& on the wire
        # the Go peer signs nothing (extension 13): its messages show as unsigned
        await bob.wait_line("stdout", r"^\[unsigned\] gopher: hello from <go> & friends$")
        await alice.wait_line("stdout", r"^\[unsigned\] gopher: hello from <go> & friends$")
        # dialled from Addr: by flood peers all, by overlay peers those it wrote to
        await (bob if routing == "overlay" else alice).wait_line(
            "stderr", f"connected to {gopher.addr}"
        )

        await alice.type("hello from alice")
        await gopher.wait_for("alice: hello from alice")  # our nick, read from omitempty
        # directly (alice dialled bob back on his hello) it is signed; through the Go peer,
        # which strips Key and Sig, unsigned: whichever copy came first
        await bob.wait_line("stdout", f"{MAYBE_UNSIGNED}alice: hello from alice$")
        await bob.type("hello from bob")
        await gopher.wait_for("bob: hello from bob")
        await alice.wait_line("stdout", f"{MAYBE_UNSIGNED}bob: hello from bob$")

        await bob.type("/nick bobby")  # a presence announcement while the Go peer is linked
        # The Go peer relays everything back to its author: a final round proves the
        # echoes were absorbed by the seen sets rather than shown again.
        gopher.say("marker")
        await alice.wait_line("stdout", r"^\[unsigned\] gopher: marker$")
        await bob.wait_line("stdout", r"^\[unsigned\] gopher: marker$")
        assert await alice.stop() == 0 and await bob.stop() == 0

    assert not gopher.crashed
    assert sorted(map(signed_or_not, alice.stdout)) == sorted(
        ["gopher: hello from <go> & friends", "bob: hello from bob", "gopher: marker"]
    )
    assert sorted(map(signed_or_not, bob.stdout)) == sorted(
        ["gopher: hello from <go> & friends", "alice: hello from alice", "gopher: marker"]
    )
    assert gopher.displayed.count("alice: hello from alice") == 1


@pytest.fixture
def go_binary() -> str:
    return go_peer_binary()


@pytest.fixture
def go_host(go_binary: str) -> Iterator[str]:
    """A lab namespace with the LAN address LAN_IP (sync, so that a skip keeps its reason)."""
    with lab() as net:
        ns = net.host("go")
        net.lan(ns, f"{LAN_IP}/24")
        yield ns


@pytest.mark.parametrize("routing", ["overlay", "flood"])
async def test_the_real_go_peer_and_two_whisper_processes_in_a_namespace(
    nursery, go_binary, go_host, tmp_path, routing
):
    note = tmp_path / "note.txt"
    note.write_text("from bob\n")
    peers: list[InNamespace] = []
    with explained(peers), trio.fail_after(30):
        flags = [*ON_LAN, "-no-discovery", "-routing", routing]
        alice = whisper_in(go_host, *flags, "-nick", "alice")
        peers.append(alice)
        await alice.start(nursery)
        bob = whisper_in(go_host, *flags, "-vv", "-nick", "bob", "-peer", alice.addr)
        peers.append(bob)
        await bob.start(nursery)
        await bob.wait_line("stderr", f"connected to {alice.addr}$")
        await bob.wait_line("stderr", "^alice joined$")  # she dialled back on bob's hello
        from_alice = await bob.wait_line("stderr", rf"DEBUG accepted {LAN_IP}:\d+$")
        alice_port = from_alice.rsplit(":", 1)[1]
        gopher = RealGoPeer(go_host, go_binary, "-nick", "gopher", "-peer", bob.addr)
        peers.append(gopher)
        await gopher.start(nursery)
        # It says nothing when its -peer link is up, and a line typed before that is lost:
        # bob's other incoming connection is the Go peer's.
        await bob.wait_line("stderr", rf"DEBUG accepted {LAN_IP}:(?!{alice_port}$)\d+$")

        await gopher.type("hello from <go> & friends")  # Go escapes <>& on the wire
        # the Go peer signs nothing (extension 13): its messages show as unsigned
        await bob.wait_line("stdout", r"^\[unsigned\] gopher: hello from <go> & friends$")
        await alice.wait_line("stdout", r"^\[unsigned\] gopher: hello from <go> & friends$")
        # dialled from its Addr: by both on a flood; on the overlay by bob, whose link the
        # Go peer wrote on (alice heard of it from bob, an overlay peer: PROTOCOL.md §7.8)
        if routing == "flood":
            await alice.wait_line("stderr", f"connected to {gopher.addr}$")
        await bob.wait_line("stderr", f"connected to {gopher.addr}$")

        await alice.type("hello from alice")  # signed: Go shows it, ignoring Key and Sig
        await gopher.wait_line("stdout", "^alice: hello from alice$")  # nick from omitempty
        await bob.wait_line("stdout", f"{MAYBE_UNSIGNED}alice: hello from alice$")
        await alice.wait_line("stderr", "^bob joined$")  # presence, between whispers only
        await bob.type("/nick bobby")  # announced at once, never to the Go peer
        await alice.wait_line("stderr", "^bob is now bobby$")
        await bob.type("/nick bob", "hello from bob", "/me waves", f"/send {note}")
        await gopher.wait_line("stdout", "^bob: hello from bob$")
        await gopher.wait_line("stdout", "^bob waves$")  # how Go shows an action
        await gopher.wait_line("stdout", r"^bob: \[file\] note.txt \(9 B, text/plain\)$")
        # the file itself, straight from bob; or its Body alone, if the copy the Go peer
        # relayed (file keys, Key and Sig stripped) came first
        await alice.wait_line("stdout", rf"{MAYBE_UNSIGNED}bob: \[file( #1)?\] note.txt")

        # extension 13 through the Go peer: a channel message shows there as its Body's
        # [#room] text, a DM as its placeholder under alice's Addr; neither crashes it
        await alice.type("/join #room", "in the room", "/part", "/verify bob")
        await gopher.wait_line("stdout", r"^alice: \[#room\] in the room$")
        await alice.wait_line("stderr", "^bob: fingerprint ")  # alice pinned bob's key
        await alice.type("/msg bob for bob only")
        await gopher.wait_line("stdout", rf"^{alice.addr}: \[encrypted message\]$")

        # The Go peer relays everything back to its author as well: a last round shows
        # that the echoes were absorbed, and that the Go peer is still relaying.
        await gopher.type("marker")
        await bob.wait_line("stdout", r"^\[unsigned\] gopher: marker$")
        await alice.wait_line("stdout", r"^\[unsigned\] gopher: marker$")
        assert gopher.alive, gopher.stderr
        assert await alice.stop() == 0 and await bob.stop() == 0

    assert not [line for line in gopher.stderr if "panic" in line], gopher.stderr
    assert sorted(gopher.stdout) == sorted(
        [
            "alice: hello from alice",
            "bob: hello from bob",
            "bob waves",
            "bob: [file] note.txt (9 B, text/plain)",
            "alice: [#room] in the room",
            f"{alice.addr}: [encrypted message]",
        ]
    )
    shown_alice = [signed_or_not(line).split("  /save")[0] for line in alice.stdout]
    shown_alice = [line.replace("[file] note", "[file #1] note") for line in shown_alice]
    assert sorted(shown_alice) == sorted(
        [
            "gopher: hello from <go> & friends",
            "bob: hello from bob",
            "* bob waves",  # an action, as the terminal UI shows it
            "bob: [file #1] note.txt (9 B, text/plain)",
            "gopher: marker",
        ]
    )
    # bob has not joined #room: alice's channel message is not shown to him, unless it came
    # through the Go peer first (stripped of Channel, it is a main-room message then); the
    # DM is opened if it came straight from alice, and lost if the Go peer's stripped copy
    # came first (PROTOCOL.md §7.6): its placeholder is then shown, unsigned
    dm = {"[direct] alice: for bob only", f"{alice.addr}: [encrypted message]"}
    shown_bob = [signed_or_not(line) for line in bob.stdout if "in the room" not in line]
    assert len(dm & set(shown_bob)) == 1, shown_bob
    assert sorted(line for line in shown_bob if line not in dm) == sorted(
        ["gopher: hello from <go> & friends", "alice: hello from alice", "gopher: marker"]
    )


async def test_whisper_dials_the_real_go_peer_it_hears_announce_itself(nursery, go_binary, go_host):
    """PROTOCOL.md §6: the Go peer's one datagram at start is heard, and it is dialled."""
    peers: list[InNamespace] = []
    with explained(peers), trio.fail_after(30):
        alice = whisper_in(go_host, *ON_LAN, "-discovery-port", "5555", "-nick", "alice")
        peers.append(alice)
        await alice.start(nursery)  # listening on UDP 5555 once it prints its address
        gopher = RealGoPeer(go_host, go_binary, "-nick", "gopher")
        peers.append(gopher)
        await gopher.start(nursery)
        await alice.wait_line("stderr", f"connected to {gopher.addr}$")
        await alice.type("found you")
        await gopher.wait_line("stdout", "^alice: found you$")
        assert gopher.alive, gopher.stderr
