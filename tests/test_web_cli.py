"""``whisper -http HOST:PORT`` as a user runs it: the URL, errors, and a clean exit."""

from __future__ import annotations

import re
import shlex
import signal
import socket
import time

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from whisper import Node
from whisper.web import WebServer
from whisper.web.auth import allowed_hosts
from whisper.web.server import is_loopback

from .proc import Whisper, one_line, run
from .test_tui_e2e import AFTER, TMUX, Tmux, whisper_command

TIMEOUT = 30
LOOPBACK = ["-host", "127.0.0.1", "-port", "0", "-headless", "-no-discovery"]


@pytest.mark.parametrize(
    ("value", "words"), [("nocolon", "not HOST:PORT"), ("127.0.0.1:x", "not a number")]
)
async def test_a_bad_http_address_is_one_line_exit_2(value, words):
    code, _out, err = await run(*LOOPBACK, "-http", value)
    assert code == 2 and one_line(err) and words in err and "-http" in err


async def test_an_http_port_in_use_is_one_line_exit_1():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code, _out, err = await run(*LOOPBACK, "-http", f"127.0.0.1:{port}")
    assert code == 1 and one_line(err.splitlines()[-1])
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in err and "-http" in err


async def test_prints_the_url_with_its_token_and_sigterm_closes_feeds_and_exits(nursery):
    w = await Whisper(*LOOPBACK, "-nick", "alice", "-http", "127.0.0.1:0").start(nursery)
    with trio.fail_after(TIMEOUT):
        line = await w.wait_line("stderr", r"^web: http://")
        url = re.match(r"^web: (http://127\.0\.0\.1:\d+/\?token=(\S+))$", line)
        assert url, line
        base, token = url.group(1).split("/?")[0], url.group(2)
        async with httpx.AsyncClient() as client:
            r = await client.get(f"{base}/api/me", headers={"Authorization": f"Bearer {token}"})
        assert r.json()["Nick"] == "alice"
        assert not any("Running on" in line for line in w.stderr)  # hypercorn's own URL
        ws_url = base.replace("http", "ws") + "/api/feed"
        auth = [("Authorization", f"Bearer {token}")]
        async with open_websocket_url(ws_url, extra_headers=auth) as ws:
            await ws.get_message()
            started = time.monotonic()
            w.process.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await ws.get_message()
            assert closed.value.reason.code == 1001
        assert await w.process.wait() == 0
        assert time.monotonic() - started < 3


def test_which_binds_warn_and_which_hosts_are_ours():
    """A bind other than loopback warns (no TLS); a wildcard bind accepts our addresses."""
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.7")
    assert not WebServer(Node(), "127.0.0.1", 0).warning
    assert "without TLS" in WebServer(Node(), "0.0.0.0", 8888).warning
    assert allowed_hosts("127.0.0.1", 8888) == {"127.0.0.1:8888", "localhost:8888"}
    wild = allowed_hosts("0.0.0.0", 8888, ["192.0.2.7", "fe80::1"])
    assert {"192.0.2.7:8888", "[fe80::1]:8888", "[::1]:8888", "localhost:8888"} <= wild
    assert "localhost" in allowed_hosts("127.0.0.1", 80)


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed (bash .ci/run installs it)")
async def test_beside_the_terminal_ui(tmp_path):
    with socket.socket() as probe:  # a free port, named in advance as a user would
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [*whisper_command(), "-host", "127.0.0.1", "-port", "0", "-no-discovery"]
    argv += ["-nick", "alice", "-http", f"127.0.0.1:{port}"]
    env = f"env XDG_DATA_HOME={shlex.quote(str(tmp_path / 'data'))} WHISPER_HTTP_TOKEN=tt"
    tmux = Tmux(tmp_path)
    auth = {"Authorization": "Bearer tt"}
    try:
        await tmux.start(f"{env} {shlex.join(argv)}; {AFTER}")
        await tmux.until(lambda s: "you are alice" in s, "the terminal UI")
        url = f"web: open http://127.0.0.1:{port}/?token=tt"
        await tmux.until(lambda s: url in s, "the page's address in the terminal UI")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=auth) as web:
            assert (await web.post("/api/messages", json={"Body": "from the web"})).is_success
            await tmux.until(lambda s: "<alice> from the web" in s, "the web's message on screen")
            await tmux.type("from the terminal")
            await tmux.keys("Enter")
            with trio.fail_after(TIMEOUT):
                while True:
                    r = await web.get("/api/messages", params={"since": 1, "wait": 5})
                    if r.json()["messages"]:
                        break
            assert r.json()["messages"][0]["Body"] == "from the terminal"
        await tmux.type("/quit")
        await tmux.keys("Enter")
        after = await tmux.exited()
        assert "exit status 0" in after
        assert f"web: http://127.0.0.1:{port}/?token=tt" in after  # there again on leaving
    finally:
        await tmux.kill()
