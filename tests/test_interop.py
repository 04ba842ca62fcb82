"""Two whisper processes and a Go-style peer on loopback exchange messages, each shown once."""

from __future__ import annotations

import trio

from .gopeer import GoPeer
from .proc import Whisper

LOOPBACK = ["-host", "127.0.0.1", "-port", "0", "-headless"]


async def test_two_whisper_processes_and_a_go_peer(nursery):
    with trio.fail_after(30):
        alice = await Whisper(*LOOPBACK, "-nick", "alice").start(nursery)
        bob = await Whisper(*LOOPBACK, "-nick", "bob", "-peer", alice.addr).start(nursery)
        gopher = GoPeer("gopher")
        await nursery.start(gopher.run, bob.addr)
        await bob.wait_line("stderr", f"connected to {alice.addr}")

        gopher.say("hello from <go> & friends")  # Go escapes <>& on the wire
        await bob.wait_line("stdout", "^gopher: hello from <go> & friends$")
        await alice.wait_line("stdout", "^gopher: hello from <go> & friends$")
        await alice.wait_line("stderr", f"connected to {gopher.addr}")  # dialled from Addr

        await alice.type("hello from alice")
        await gopher.wait_for("alice: hello from alice")  # our nick, read from omitempty
        await bob.wait_line("stdout", "^alice: hello from alice$")
        await bob.type("hello from bob")
        await gopher.wait_for("bob: hello from bob")
        await alice.wait_line("stdout", "^bob: hello from bob$")

        # The Go peer relays everything back to its author: a final round proves the
        # echoes were absorbed by the seen sets rather than shown again.
        gopher.say("marker")
        await alice.wait_line("stdout", "^gopher: marker$")
        await bob.wait_line("stdout", "^gopher: marker$")
        assert await alice.stop() == 0 and await bob.stop() == 0

    assert not gopher.crashed
    assert sorted(alice.stdout) == sorted(
        ["gopher: hello from <go> & friends", "bob: hello from bob", "gopher: marker"]
    )
    assert sorted(bob.stdout) == sorted(
        ["gopher: hello from <go> & friends", "alice: hello from alice", "gopher: marker"]
    )
    assert gopher.displayed.count("alice: hello from alice") == 1
