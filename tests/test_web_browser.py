"""The page in real headless Chromium (Debian's ``chromium``, driven by playwright).

One browser per module and a whisper daemon as a real subprocess (``-headless -http``);
peers are plain sockets of this test.  In CI these tests never skip: ``.ci/run`` installs
chromium or fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from whisper.identity import Identity, short_fingerprint, sign
from whisper.store import History

from .helpers import wire
from .store_helpers import record

try:
    from playwright import sync_api
except ImportError:  # in CI the test extra installs it: a missing playwright is a failure
    if os.environ.get("CI"):
        raise
    pytest.skip("playwright is not installed (pip install -e '.[test]')", allow_module_level=True)

TOKEN = "browser-test-token"
TIMEOUT_MS = 10_000
CHROMIUM_FLAGS = [
    "--no-sandbox",  # we run as root
    "--disable-gpu",
    "--disable-background-networking",  # else chromium tries to reach the (closed) network
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is not installed: .ci/run must install it")
        pytest.skip("no chromium here (apt-get install chromium)")
    return path


class Daemon:
    """``whisper -headless -http 127.0.0.1:PORT``, its stderr read by a thread."""

    def __init__(self, http_port: int = 0, token: str = TOKEN, *more: str) -> None:
        env = dict(os.environ, WHISPER_HTTP_TOKEN=token)
        args = ["-host", "127.0.0.1", "-port", "0", "-no-discovery", "-headless", *more]
        args += ["-nick", "alice", "-http", f"127.0.0.1:{http_port}"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "whisper", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.addr = self.url = ""
        deadline = time.monotonic() + 20
        while not self.url and time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                raise RuntimeError("whisper exited before serving the web interface")
            if m := re.match(r"listening on (\S+)", line):
                self.addr = m.group(1)
            if m := re.match(r"web: (\S+)", line):
                self.url = m.group(1)
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()
        self.http_port = int(self.url.split(":")[2].split("/")[0])

    def peer(self) -> socket.socket:
        host, port = self.addr.rsplit(":", 1)
        return socket.create_connection((host, int(port)))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Listener:
    """A peer's listening side: collects the messages the daemon sends it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.addr = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.bodies: list[str] = []
        self.got = threading.Condition()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as lines:
            for line in lines:
                with self.got:
                    self.bodies.append(json.loads(line).get("Body", ""))
                    self.got.notify_all()

    def wait_for(self, body: str, timeout: float = 10) -> None:
        with self.got:
            assert self.got.wait_for(lambda: body in self.bodies, timeout), self.bodies


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    d = Daemon()
    yield d
    d.stop()


@pytest.fixture
def page(browser, daemon):
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(daemon.url)
    page.wait_for_selector("#link-state.live")
    yield page
    context.close()
    assert errors == []


def messages(page) -> list[str]:
    return page.locator("[data-testid=message] .line").all_inner_texts()


def test_the_token_url_alone_gives_a_working_page_with_the_input_focused(page, daemon):
    assert page.url.endswith("/") and "token" not in page.url  # traded for the cookie
    focused = page.evaluate("document.activeElement.dataset.testid")
    assert focused == "message-input"
    box = page.get_by_test_id("message-input")
    box.type("two")
    box.press("Shift+Enter")
    box.type("lines")
    box.press("Enter")
    page.locator("[data-testid=message].own", has_text="lines").wait_for()
    assert any(text.endswith("two\nlines") for text in messages(page))
    assert box.input_value() == ""


def test_a_hostile_peer_is_shown_as_text_and_nothing_runs(page, daemon):
    body = '<img src=x onerror="window.pwned=1">'
    nick = "<script>window.pwned=2</script>"
    with daemon.peer() as peer:
        peer.sendall(json.dumps(wire(body, nick=nick)).encode() + b"\n")
        page.locator("[data-testid=message]", has_text="onerror").wait_for()
    item = page.locator("[data-testid=message]", has_text="onerror")
    assert item.locator(".nick").inner_text() == nick
    assert item.locator(".body").inner_text() == body
    assert page.locator("#messages img, #messages script").count() == 0
    assert page.evaluate("window.pwned") is None
    heard = page.locator("#users li.heard", has_text="window.pwned=2")
    assert heard.locator(".nick").inner_text() == nick  # heard, not online: listed dimmed


def test_the_online_list_is_presence_and_the_heard_are_dimmed(page, daemon):
    nick = "<b>dora</b>"
    here = {"Presence": "here", "ID": "presence-dora", "Addr": "127.0.0.1:9", "Nick": nick}
    with daemon.peer() as peer:
        peer.sendall(json.dumps(here).encode() + b"\n")
        peer.sendall(json.dumps(wire("hi", nick="erin")).encode() + b"\n")
        online = page.locator("#users li.online", has_text="dora")
        online.wait_for()
        assert online.locator(".nick").inner_text() == nick and "online" in online.inner_text()
        page.locator("#users li.heard", has_text="erin").wait_for()
        assert page.locator("#users li.online").first.inner_text().endswith("you")
        assert page.locator("#users b").count() == 0
        assert page.locator("#online-count").inner_text() == "2"
        gone = {**here, "Presence": "gone", "ID": "presence-dora-gone"}
        peer.sendall(json.dumps(gone).encode() + b"\n")
        online.wait_for(state="detached")


def test_an_incoming_link_has_a_disconnect_button_too(page, daemon):
    with daemon.peer() as peer:
        port = peer.getsockname()[1]
        row = page.locator("[data-testid=peer-row]", has_text=f":{port}")
        assert row.locator(".dir").inner_text().lower() == "in"
        row.get_by_test_id("disconnect").click()
        row.wait_for(state="detached")
        peer.settimeout(TIMEOUT_MS / 1000)
        while peer.recv(4096):  # the greeting, then the close
            pass


def test_on_a_phone_the_side_panel_is_hidden_until_opened(browser, daemon):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(daemon.url)
        page.wait_for_selector("#link-state.live")
        peer_box = page.get_by_test_id("peer-input")
        assert not peer_box.is_visible()  # off screen, and out of the tab order
        page.locator("#panel-toggle").click()
        peer_box.wait_for(state="visible")
        page.keyboard.press("Escape")
        peer_box.wait_for(state="hidden")
        assert page.evaluate("document.activeElement.id") == "panel-toggle"
    finally:
        context.close()


def test_connect_a_peer_send_to_it_and_disconnect(page, daemon):
    listener = Listener()
    peer_box = page.get_by_test_id("peer-input")
    peer_box.fill(listener.addr)
    peer_box.press("Enter")
    row = page.locator("[data-testid=peer-row]", has_text=listener.addr)
    row.locator(".peer-state.connected").wait_for()
    page.get_by_test_id("message-input").fill("over the link")
    page.get_by_test_id("message-input").press("Enter")
    listener.wait_for("over the link")
    row.get_by_test_id("disconnect").click()
    row.wait_for(state="detached")
    listener.sock.close()


def test_upload_a_file_and_the_unread_count_in_the_title(page, daemon, tmp_path):
    listener = Listener()
    page.get_by_test_id("peer-input").fill(listener.addr)
    page.get_by_test_id("peer-input").press("Enter")
    page.locator("[data-testid=peer-row]", has_text=listener.addr).locator(".connected").wait_for()
    path = tmp_path / "notes.txt"
    path.write_text("hello file")
    page.get_by_test_id("file-input").set_input_files(str(path))
    listener.wait_for("[file] notes.txt (10 B, text/plain)")
    listener.sock.close()
    page.evaluate(
        "Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    with daemon.peer() as peer:
        peer.sendall(json.dumps(wire("while you were away", nick="bob")).encode() + b"\n")
        page.locator("[data-testid=message]", has_text="while you were away").wait_for()
    assert page.title() == "(1) whisper"
    page.evaluate(
        "Object.defineProperty(document, 'hidden', {value: false, configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    assert page.title() == "whisper"


def test_slash_commands_and_nick_change(page, daemon):
    box = page.get_by_test_id("message-input")
    box.fill("/help")
    box.press("Enter")
    page.locator("[data-testid=info]", has_text="commands:").wait_for()
    page.get_by_test_id("nick").click()
    page.get_by_test_id("nick-input").fill("alicia")
    page.get_by_test_id("nick-input").press("Enter")
    page.get_by_test_id("nick").filter(has_text="alicia").wait_for()
    box.fill("/nick alice")  # and back, for the other tests
    box.press("Enter")
    page.get_by_test_id("nick").filter(has_text="alice").wait_for()


def test_the_feed_reconnects_when_the_daemon_restarts(browser):
    first = Daemon()
    try:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(first.url)
        page.wait_for_selector("#link-state.live")
        port = first.http_port
        first.stop()
        page.wait_for_selector("#link-state:not(.live)")
        second = Daemon(http_port=port)  # same address, same token: the cookie still works
        try:
            page.wait_for_selector("#link-state.live", timeout=20_000)
            with second.peer() as peer:
                peer.sendall(json.dumps(wire("after the restart", nick="bob")).encode() + b"\n")
                page.locator("[data-testid=message]", has_text="after the restart").wait_for()
        finally:
            second.stop()
        third = Daemon(http_port=port, token="a-new-token")  # the cookie is no longer good
        try:
            page.locator("#banner", has_text="open the address whisper printed").wait_for()
        finally:
            third.stop()
        context.close()
    finally:
        first.stop()


def test_unsigned_and_impostor_messages_are_marked(page, daemon):
    """Extension 13: the page tags what is not verified; an impostor shows its fingerprint."""
    first, second = Identity.generate(), Identity.generate()
    with daemon.peer() as peer:
        for obj in (
            wire("plain from go", nick="gopher"),
            sign(first, wire("the real dora", nick="dora")),
            sign(second, wire("a fake dora", nick="dora")),
        ):
            peer.sendall(json.dumps(obj).encode() + b"\n")
        page.locator("[data-testid=message]", has_text="a fake dora").wait_for()
    plain = page.locator("[data-testid=message]", has_text="plain from go")
    assert plain.locator(".tag.unsigned").inner_text() == "unsigned"
    real = page.locator("[data-testid=message]", has_text="the real dora")
    assert real.locator(".tag").count() == 0  # verified: no mark
    fake = page.locator("[data-testid=message].impostor", has_text="a fake dora")
    assert (
        fake.get_by_test_id("impostor").inner_text()
        == f"impostor {short_fingerprint(second.public)}"
    )


def test_scrolled_to_the_top_the_page_loads_older_messages_from_the_history(browser, tmp_path):
    path = tmp_path / "h.sqlite3"
    with History.open(path) as history:
        history.add_messages([record(f"old {n:03}", nick="carol") for n in range(120)])
    daemon = Daemon(0, TOKEN, "-history", str(path))
    try:
        context = browser.new_context(viewport={"width": 1200, "height": 800})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(daemon.url)
        page.locator("[data-testid=message]", has_text="old 119").wait_for()
        with daemon.peer() as peer:
            peer.sendall(json.dumps(wire("live one", nick="bob")).encode() + b"\n")
            page.locator("[data-testid=message]", has_text="live one").wait_for()
        assert page.locator("[data-testid=message]", has_text="old 000").count() == 0
        while page.locator("[data-testid=beginning]").count() == 0:
            shown = len(messages(page))
            page.locator("#messages").evaluate("list => { list.scrollTop = 0; }")
            page.wait_for_function(
                "shown => document.querySelectorAll('[data-testid=message]').length > shown"
                " || document.querySelector('[data-testid=beginning]') !== null",
                arg=shown,
            )
        bodies = [line.split("carol", 1)[-1].strip() for line in messages(page)]
        assert bodies[:120] == [f"old {n:03}" for n in range(120)]  # each once, in order
        assert "live one" in messages(page)[-1] and len(bodies) == 121
        context.close()
    finally:
        daemon.stop()
