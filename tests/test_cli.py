"""The command line, as a user runs it: real processes on loopback."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket

import psutil
import pytest
import trio

from whisper.cli import build_parser, config_from_args
from whisper.conformance.harness import free_port
from whisper.discovery_policy import DISCOVERY_PORT
from whisper.headless import read_lines

from .helpers import LOCAL, inbox, origin, send, start_node, wire
from .proc import Whisper, one_line, run

TIMEOUT = 30
LOOPBACK = ["-host", LOCAL, "-port", "0", "-headless"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-bogus"], "unrecognized arguments"),
        (["-port", "x"], "invalid int value"),
        (["-port", "70000"], "0-65535"),
        (["-peer", "nocolon"], "not HOST:PORT"),
        (["-peer", "host:0"], "1-65535"),
        (["-peer", "host:http"], "not a number"),
        (["-peer", "host:\u00b2"], "not a number"),
        (["-downloads", "~no-such-user-here"], "no such user"),
        (["-nick"], "expected one argument"),
        (["-nick", "ev\x1b[31mil"], "printable characters"),  # as /nick refuses it
        (["-nick", "two words"], "without spaces"),
        (["-nick", "x" * 33], "1-32"),
        (["-peer", "a b:1"], "not an IP address or a host name"),  # not retried for ever
        (["-peer", "127.0.0.1:1", "-peer", "x-.org:1"], "-peer 'x-.org:1'"),
    ],
)
async def test_bad_flags_one_line_exit_2(args, words):
    code, _out, err = await run(*args)
    assert code == 2
    assert one_line(err) and words in err and err.startswith("whisper: ")


async def test_version():
    code, out, err = await run("--version")
    assert code == 0 and re.fullmatch(r"whisper \d+\.\d+\.\d+\S*\n", out), (out, err)
    assert (await run("-version"))[1] == out


@pytest.mark.parametrize(
    ("args", "port"),
    [
        (["-host", "127.0.0.1"], None),  # a private peer here: no UDP discovery at all
        (["-host", "127.0.0.1", "-discovery-port", "6000"], 6000),  # unless asked for
        (["-host", "::1"], None),
        (["-host", "localhost"], None),
        (["-host", "10.1.2.3"], DISCOVERY_PORT),
        (["-host", "10.1.2.3", "-discovery-port", "6000"], 6000),
        (["-host", "10.1.2.3", "-no-discovery"], None),
    ],
)
def test_loopback_takes_part_in_discovery_only_when_asked(args, port):
    discovery = config_from_args(build_parser().parse_args(args)).discovery
    assert (discovery and discovery.port) == port


async def test_a_loopback_peer_binds_no_udp_port_unless_given_one(nursery):
    with trio.fail_after(TIMEOUT):
        private = await Whisper(*LOOPBACK).start(nursery)
        udp = free_port(socket.SOCK_DGRAM)
        asked = await Whisper(*LOOPBACK, "-discovery-port", str(udp)).start(nursery)
    assert udp_ports(private) == []  # did not listen on 0.0.0.0:5555
    assert udp_ports(asked) == [udp]


def udp_ports(peer: Whisper) -> list[int]:
    assert peer.process is not None
    sockets = psutil.Process(peer.process.pid).net_connections(kind="udp")
    return sorted(s.laddr.port for s in sockets)


async def test_port_in_use_one_line_exit_1(nursery):
    node = await start_node(nursery)
    port = node.addr.rsplit(":", 1)[1]
    code, _out, err = await run("-host", LOCAL, "-port", port, "-headless")
    assert code == 1
    assert one_line(err) and "in use" in err and "-port" in err


async def test_address_not_here_one_line_exit_1():
    code, _out, err = await run("-host", "192.0.2.77", "-port", "0", "-headless")  # TEST-NET-1
    assert code == 1 and one_line(err) and "-host" in err


async def test_two_processes_chat_and_exit_cleanly(nursery):
    with trio.fail_after(TIMEOUT):
        alice = await Whisper(*LOOPBACK, "-nick", "alice").start(nursery)
        bob = await Whisper(*LOOPBACK, "-nick", "bob", "-peer", alice.addr).start(nursery)
        await bob.wait_line("stderr", f"connected to {alice.addr}")
        await bob.type("hello alice")
        await alice.wait_line("stdout", "^bob: hello alice$")
        await alice.wait_line("stderr", f"connected to {bob.addr}")  # dialled back via Addr
        await alice.type("hi bob", "/me waves")
        await bob.wait_line("stdout", "^alice: hi bob$")
        await bob.wait_line("stdout", r"^\* alice waves$")  # as the terminal UI shows it
        await bob.type("/peers")
        await bob.wait_line("stderr", f"out {alice.addr}  connected")
        await alice.close_stdin()  # EOF keeps relaying
        await bob.type("still there?")
        await alice.wait_line("stdout", "^bob: still there\\?$")
        assert await alice.stop(signal.SIGTERM) == 0
        assert await bob.stop(signal.SIGINT) == 0
    assert "bob: hello alice" not in bob.stdout  # own messages are not echoed headless
    assert not any("Traceback" in line for line in alice.stderr + bob.stderr)


async def test_headless_prints_presence_notices_on_stderr(nursery):
    """Issue 13: bob joins with -peer and says nothing; alice sees him join, rename, leave."""
    with trio.fail_after(TIMEOUT):
        alice = await Whisper(*LOOPBACK, "-nick", "alice").start(nursery)
        bob = await Whisper(*LOOPBACK, "-nick", "bob", "-peer", alice.addr).start(nursery)
        await alice.wait_line("stderr", "^bob joined$")
        await bob.wait_line("stderr", "^alice joined$")  # alice dialled back on the hello
        await bob.type("/nick bobby")
        await alice.wait_line("stderr", "^bob is now bobby$")
        await alice.type("/who")
        await alice.wait_line("stderr", "^2 online$")
        await alice.wait_line("stderr", f"^  bobby  {bob.addr}  seen \\d+s ago, linked$")
        await bob.type("/quit")
        await alice.wait_line("stderr", "^bobby left$")
        assert await bob.process.wait() == 0
        carol = await Whisper(*LOOPBACK, "-nick", "carol", "-peer", alice.addr).start(nursery)
        await alice.wait_line("stderr", "^carol joined$")
        assert await carol.stop(signal.SIGTERM) == 0  # a signal says goodbye too
        await alice.wait_line("stderr", "^carol left$")
        assert await alice.stop(signal.SIGTERM) == 0


async def test_headless_keeps_link_level_lines_off_stderr_unless_verbose(nursery):
    """Issue 13: connected, retrying, a clean close ... are not chat; presence is."""
    with trio.fail_after(TIMEOUT):
        alice = Whisper(*LOOPBACK, "-nick", "alice")
        alice.args.remove("-v")  # as a user starts it
        await alice.start(nursery)
        bob = await Whisper(*LOOPBACK, "-nick", "bob", "-peer", alice.addr).start(nursery)
        await alice.wait_line("stderr", "^bob joined$")
        await bob.wait_line("stderr", f"connected to {alice.addr}")  # bob has -v
        await bob.wait_line("stderr", "^alice joined$")  # so alice has dialled bob back
        assert await bob.stop(signal.SIGTERM) == 0
        await alice.wait_line("stderr", "^bob left$")
        assert await alice.stop(signal.SIGTERM) == 0
    assert not [line for line in alice.stderr if "connected to" in line or "lost" in line]
    assert alice.stderr[0].startswith("listening on ")


async def test_quit_command_exits_0(nursery):
    with trio.fail_after(TIMEOUT):
        peer = await Whisper(*LOOPBACK).start(nursery)
        await peer.type("/nosuch", "/quit")
        assert await peer.process.wait() == 0
    assert any("unknown command /nosuch" in line for line in peer.stderr)


async def test_unreachable_peer_is_a_warning(nursery):
    closed = trio.socket.socket()
    await closed.bind((LOCAL, 0))
    dead = f"{LOCAL}:{closed.getsockname()[1]}"
    closed.close()
    with trio.fail_after(TIMEOUT):
        peer = await Whisper(*LOOPBACK, "-peer", dead).start(nursery)
        await peer.wait_line("stderr", f"WARNING .*{dead}")
        # Still running and serving.
        node = await start_node(nursery)
        box = await inbox(nursery, node)
        await peer.type(f"/connect {node.addr}", "are you there")
        await box.wait_for(lambda bodies: "are you there" in bodies)
        assert await peer.stop() == 0


async def test_json_output_and_hostile_text_neutralised(nursery):
    with trio.fail_after(TIMEOUT):
        text_peer = await Whisper(*LOOPBACK).start(nursery)
        json_peer = await Whisper(*LOOPBACK, "-json").start(nursery)
        hostile = wire(
            "\x1b[2J\x1b]0;pwned\x07bell\x9b31m \u202eevil\u202c 日本 😀",
            nick="m\x1b[31mallory",
            Extra={"k": 1},
        )
        for peer in (text_peer, json_peer):
            host, port = peer.addr.rsplit(":", 1)
            conn = await trio.open_tcp_stream(host, int(port))
            await send(conn, hostile)
        line = await text_peer.wait_line("stdout", "bell")
        jline = await json_peer.wait_line("stdout", "bell")
        await text_peer.stop()
        await json_peer.stop()
    assert "\x1b" not in line and "\x07" not in line and "\x9b" not in line
    assert "\u202e" not in line
    assert line == "[unsigned] m␛[31mallory: ␛[2J␛]0;pwned␇bell\ufffd31m \ufffdevil\ufffd 日本 😀"
    parsed = json.loads(jline)
    unsigned = {"Verified": False, "Direct": False}  # extension 13: no Key, no Sig
    assert parsed == {**hostile, "History": False, "File": None, **unsigned}  # wire unchanged
    assert "\x1b" not in jline and "\x9b" not in jline and "\u202e" not in jline


async def test_log_lines_neutralise_what_peers_wrote(nursery):
    """A flooder cut off is logged with the Addr it claimed, on stderr: often the user's
    terminal."""
    flood = ["-flood-conn-burst", "1", "-flood-conn-rate", "1", "-flood-penalties", "1"]
    with trio.fail_after(TIMEOUT):
        peer = await Whisper(*LOOPBACK, *flood).start(nursery)
        host, port = peer.addr.rsplit(":", 1)
        conn = await trio.open_tcp_stream(host, int(port))
        evil = "\x1b]0;pwned\x07\x1b[2J\x9b31m"
        await send(conn, *(wire(f"flood {i}", addr=evil) for i in range(10)))
        line = await peer.wait_line("stderr", "flood control")
        await peer.stop()
    assert "\x1b" not in line and "\x07" not in line and "\x9b" not in line
    assert "␛]0;pwned␇␛[2J\ufffd31m" in line


@pytest.mark.parametrize("headless", [["-headless"], []])
async def test_a_closed_stdin_is_the_end_of_input(nursery, headless):
    """Started with stdin closed (``<&-``): no traceback, and no socket is taken for stdin."""
    args = ["-host", LOCAL, "-port", "0", "-no-discovery", *headless]
    with trio.fail_after(TIMEOUT):
        peer = await Whisper(*args).start(nursery, preexec_fn=lambda: os.close(0))
        await peer.wait_line("stderr", "end of input")
        node = await start_node(nursery)
        box = await inbox(nursery, node)
        host, port = peer.addr.rsplit(":", 1)
        conn = await trio.open_tcp_stream(host, int(port))
        await send(conn, wire("hello", addr=node.addr))  # it dials us back ...
        await send(conn, wire("relayed", addr="127.0.0.1:9"))  # ... and relays this to us
        await box.wait_for(lambda bodies: "relayed" in bodies)
        assert await peer.stop() == 0
    assert not any("Traceback" in line or "cannot listen" in line for line in peer.stderr)


async def test_an_unreadable_stdin_is_the_end_of_input(tmp_path):
    """A read error on stdin (EIO from a terminal that went away ...) ends the input, and
    the node keeps relaying; it was an OSError out of the node, 'cannot listen on ...'."""
    fd = os.open(tmp_path, os.O_RDONLY)  # read() on a directory: EISDIR
    try:
        with trio.fail_after(TIMEOUT):
            assert [line async for line in read_lines(fd)] == []
    finally:
        os.close(fd)


async def test_messages_reach_a_go_style_listener(nursery):
    """Our process's messages as a Go peer reads them: nick under omitempty, integer time."""
    from .helpers import sink

    s = await sink(nursery)
    with trio.fail_after(TIMEOUT):
        peer = await Whisper(*LOOPBACK, "-nick", "phil", "-peer", s.addr).start(nursery)
        await s.wait_for(lambda s: s.connections == 1)
        await peer.type("hello go")
        await s.wait_for(lambda s: "hello go" in s.bodies)
        await peer.stop()
    obj = s.objects[-1]
    assert obj["omitempty"] == "phil" and obj["Addr"] == peer.addr
    assert type(obj["Timestamp"]) is int and obj["Timestamp"] > 10**12


async def test_incoming_connection_from_process(nursery):
    node = await start_node(nursery)
    with trio.fail_after(TIMEOUT):
        peer = await Whisper(*LOOPBACK).start(nursery)
        conn = await origin(node)
        await send(conn, wire("learn me", addr=peer.addr))
        await peer.type(f"/connect {node.addr}")
        box = await inbox(nursery, node)
        await peer.type("/nick zed", "from zed")
        await box.wait_for(lambda bodies: "from zed" in bodies)
        await peer.stop()
    assert box.messages[-1].message.nick == "zed"


async def test_json_lines_follow_the_documented_schema(nursery):
    contents = base64.b64encode(b"hello file").decode()
    go_style = wire("from go", omitempty="gopher")  # the Go peer's nick key
    nameless = wire("no nick")
    a_file = wire("[file] a.txt (10 B, text/plain)", nick="filer", FileName="a.txt",
                  FileType="text/plain", FileContents=contents)  # fmt: skip
    replayed = wire("said before", nick="old", History=True)
    with trio.fail_after(TIMEOUT):
        plain = await Whisper(*LOOPBACK, "-json").start(nursery)
        full = await Whisper(*LOOPBACK, "-json", "-json-file-contents").start(nursery)
        for peer in (plain, full):
            host, port = peer.addr.rsplit(":", 1)
            conn = await trio.open_tcp_stream(host, int(port))
            await send(conn, go_style, nameless, a_file, replayed)
            await peer.wait_line("stdout", "said before")
    lines = {o["Body"]: o for o in map(json.loads, plain.stdout)}
    unsigned = {"Verified": False, "Direct": False}  # extension 13: the Go peer signs nothing
    assert lines["from go"] == {
        **go_style,
        "Nick": "gopher",
        "History": False,
        "File": None,
        **unsigned,
    }
    assert lines["no nick"]["Nick"] == ""
    assert lines["said before"]["History"] is True
    file_line = lines["[file] a.txt (10 B, text/plain)"]
    assert file_line["File"] == {"Number": 1, "Name": "a.txt", "Type": "text/plain", "Size": 10}
    assert "FileContents" not in file_line and file_line["FileName"] == "a.txt"
    with_contents = [json.loads(line) for line in full.stdout if "FileContents" in line]
    assert [o["FileContents"] for o in with_contents] == [contents]
    for line in plain.stdout:
        keys = {"ID", "Addr", "Body", "Nick", "History", "File", "Verified", "Direct"}
        assert set(json.loads(line)) >= keys


async def test_headless_shows_actions_and_history_as_the_terminal_ui_does(nursery):
    with trio.fail_after(TIMEOUT):
        peer = await Whisper(*LOOPBACK).start(nursery)
        host, port = peer.addr.rsplit(":", 1)
        conn = await trio.open_tcp_stream(host, int(port))
        await send(conn, wire("/me waves", nick="alice"), wire("/meow", nick="cat"))
        await send(conn, wire("/me waved", nick="alice", History=True))
        await peer.wait_line("stdout", "waved")
        await peer.wait_line("stdout", "meow")
    # unsigned (extension 13): what a Go peer sends, and this test's fake writes
    assert "[unsigned] * alice waves" in peer.stdout and "[unsigned] cat: /meow" in peer.stdout
    assert any(
        re.fullmatch(r"\[history \d\d:\d\d\] \[unsigned\] \* alice waved", x) for x in peer.stdout
    )


async def test_a_key_file_others_can_read_is_refused_in_one_line(nursery, tmp_path):
    """Extension 13: the key file is made 0600; one opened up is refused, with the fix."""
    key = tmp_path / "alice.key"
    with trio.fail_after(TIMEOUT):
        peer = await Whisper(*LOOPBACK, "-identity", str(key)).start(nursery)
        await peer.type("/whoami")
        line = await peer.wait_line("stderr", "fingerprint")
        assert await peer.stop() == 0
    assert key.stat().st_mode & 0o777 == 0o600
    printed = line.split("fingerprint ")[1]
    assert re.fullmatch(r"\d{5}( \d{5}){5}", printed)
    key.chmod(0o644)
    code, _out, err = await run(*LOOPBACK, "-identity", str(key))
    assert code == 1 and one_line(err) and f"chmod 600 {key}" in err
    code, _out, err = await run(*LOOPBACK, "-identity", str(tmp_path))
    assert code == 1 and one_line(err) and "is a directory" in err
