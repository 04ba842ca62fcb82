"""The local JSON API over real loopback: every endpoint, and the refusals."""

from __future__ import annotations

import base64
import json

import pytest
import trio

from whisper import FloodConfig
from whisper.web.auth import cookie_name

from .helpers import origin, send, sink, start_node, wire
from .webhelpers import TOKEN, web_node

TIMEOUT = 10
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
async def web(nursery):
    async with web_node(nursery, nick="alice") as w:
        yield w


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def wait_messages(web, count: int) -> list[dict]:
    r = await web.client.get("/api/messages", params={"since": 0, "wait": 5})
    while len(r.json()["messages"]) < count:
        r = await web.client.get("/api/messages", params={"since": 0, "wait": 5})
    return r.json()["messages"]


# -- who may ask --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer t\u00f6ken".encode()},  # non-ASCII: bytes compared, no 500
        {"Authorization": TOKEN},  # no "Bearer"
        {"Cookie": f"{cookie_name(1)}={TOKEN}"},  # another port's cookie
    ],
)
async def test_every_api_call_needs_the_token(web, headers):
    async with web.anonymous(headers=headers) as client:
        for method, path in [("GET", "/api/messages"), ("POST", "/api/messages"), ("GET", "/")]:
            r = await client.request(method, path)
            assert r.status_code == 401, (method, path)
        assert "token" in (await client.get("/api/users")).json()["error"]


async def test_the_page_trades_the_token_for_a_strict_httponly_cookie(web):
    async with web.anonymous() as client:
        r = await client.get("/", params={"token": TOKEN})
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"{cookie_name(web.server.port)}={TOKEN}")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        page = await client.get("/")  # the cookie alone now
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert (await client.get("/api/peers")).status_code == 200
    async with web.anonymous() as client:
        assert (await client.get("/", params={"token": "nope"})).status_code == 401


async def test_a_foreign_host_is_refused_and_localhost_is_ours(web):
    port = web.server.port
    for host, status in [
        ("evil.example", 400),
        (f"evil.example:{port}", 400),
        (f"127.0.0.1:{port + 1}", 400),
        (f"localhost:{port}", 200),
        (f"127.0.0.1:{port}", 200),
    ]:
        r = await web.client.get("/api/peers", headers={"Host": host})
        assert r.status_code == status, host
        if status != 200:
            assert "Host" in r.json()["error"]


async def test_a_foreign_origin_is_refused_on_every_request(web):
    evil = {"Origin": "http://evil.example"}
    paths = [("GET", "/api/peers"), ("POST", "/api/messages"), ("GET", "/static/app.js")]
    for method, path in paths:
        r = await web.client.request(method, path, headers=evil)
        assert r.status_code == 403, path
    other_port = {"Origin": f"http://127.0.0.1:{web.server.port + 1}"}
    assert (await web.client.get("/api/peers", headers=other_port)).status_code == 403
    ours = {"Origin": f"http://127.0.0.1:{web.server.port}"}
    assert (await web.client.get("/api/peers", headers=ours)).status_code == 200


async def test_static_files_need_no_token_and_every_answer_has_the_csp(web):
    async with web.anonymous() as client:
        r = await client.get("/static/app.js")
        assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    page = (await web.client.get("/")).text
    assert "<script" in page and "<script>" not in page  # no inline script anywhere
    for r in [page_r := await web.client.get("/"), await web.client.get("/api/peers")]:
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
    assert page_r.headers["cache-control"] == "no-store"


async def test_unknown_paths_and_methods_are_json(web):
    r = await web.client.get("/api/nothing")
    assert r.status_code == 404 and "no such path" in r.json()["error"]
    r = await web.client.patch("/api/messages")
    assert r.status_code == 405 and "PATCH" in r.json()["error"]
    assert (await web.client.get("/static/nothing.js")).status_code == 404


# -- messages -----------------------------------------------------------------------------


async def test_post_sends_to_peers_and_get_pages_by_our_own_cursor(nursery, web):
    s = await sink(nursery)
    assert (await web.client.post("/api/peers", json={"Addr": s.addr})).status_code == 202
    with trio.fail_after(TIMEOUT):
        r = await web.client.post("/api/messages", json={"Body": "hello <b>web</b>"})
        assert r.status_code == 201 and r.json()["ID"].startswith("hash:sha256:")
        await s.wait_for(lambda s: "hello <b>web</b>" in s.bodies)
        peer = await origin(web.node)
        await send(peer, wire("from bob", nick="bob"), wire("again", nick="bob"))
        messages = await wait_messages(web, 3)
    assert [m["Body"] for m in messages] == ["hello <b>web</b>", "from bob", "again"]
    assert [m["Seq"] for m in messages] == [1, 2, 3]
    assert messages[0]["Own"] and messages[0]["Nick"] == "alice"
    assert not messages[1]["Own"] and messages[1]["Addr"] == "127.0.0.1:1"
    page = (await web.client.get("/api/messages", params={"since": 1, "limit": 1})).json()
    assert [m["Body"] for m in page["messages"]] == ["from bob"] and page["next"] == 2
    latest = (await web.client.get("/api/messages", params={"limit": 2})).json()
    assert [m["Seq"] for m in latest["messages"]] == [2, 3] and latest["next"] == 3
    assert latest["missed"] == 0
    empty = (await web.client.get("/api/messages", params={"since": 3})).json()
    assert empty == {"messages": [], "next": 3, "missed": 0}


async def test_a_long_poll_returns_when_a_message_arrives(nursery, web):
    results = []

    async def poll():
        r = await web.client.get("/api/messages", params={"since": 0, "wait": 20})
        results.append(r.json())

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as inner:
            inner.start_soon(poll)
            await trio.testing.wait_all_tasks_blocked(0.05)
            await web.client.post("/api/messages", json={"Body": "wake up"})
    assert [m["Body"] for m in results[0]["messages"]] == ["wake up"]


async def test_a_long_poll_with_nothing_new_returns_empty_after_wait(web):
    with trio.fail_after(TIMEOUT):
        r = await web.client.get("/api/messages", params={"since": 0, "wait": 0.2})
    assert r.json() == {"messages": [], "next": 0, "missed": 0}


@pytest.mark.parametrize(
    "params", [{"since": "-1"}, {"since": "x"}, {"limit": "1e3"}, {"wait": "soon"}, {"wait": "nan"}]
)
async def test_bad_query_values_are_400(web, params):
    r = await web.client.get("/api/messages", params=params)
    assert r.status_code == 400 and r.json()["error"]


@pytest.mark.parametrize(
    "body, why",
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),  # invalid UTF-8
        (b"[" * 500_000 + b"]" * 500_000, "not valid JSON"),  # RecursionError, not ValueError
        (b'"Body"', "JSON object"),
        (b"{}", "Body is missing"),
        (b'{"Body": ""}', "Body is empty"),
        (b'{"Body": "   "}', "Body is empty"),
        (b'{"Body": 5}', "Body is not a string"),
        (b'{"Body": "x", "n": 1' + b"0" * 5000 + b"}", "not valid JSON"),  # int too long
    ],
)
async def test_bad_bodies_are_400_and_the_node_carries_on(web, body, why):
    r = await web.client.post("/api/messages", content=body)
    assert r.status_code == 400 and why in r.json()["error"]
    assert (await web.client.post("/api/messages", json={"Body": "still here"})).status_code == 201


async def test_a_body_over_the_message_size_is_413_and_the_connection_stays_usable(web):
    huge = json.dumps({"Body": "x" * (web.node.config.limits.max_size + 10)})
    r = await web.client.post("/api/messages", content=huge)
    assert r.status_code == 413 and "larger than" in r.json()["error"]
    # the same keep-alive connection: hypercorn read the rest, so the next request works
    assert (await web.client.get("/api/peers")).status_code == 200
    # within the request's limit, but not once ID, Addr, Nick and Timestamp are added
    big = json.dumps({"Body": "x" * (web.node.config.limits.max_size - 100)})
    r = await web.client.post("/api/messages", content=big)
    assert r.status_code == 413 and "too long" in r.json()["error"]


async def test_flood_control_refusing_our_send_is_429(nursery):
    flood = FloodConfig(origin_rate=1, origin_burst=2)
    async with web_node(nursery, flood=flood) as web:
        codes = [
            (await web.client.post("/api/messages", json={"Body": f"m{i}"})).status_code
            for i in range(4)
        ]
        assert codes[:2] == [201, 201] and codes[2] == 429
        r = await web.client.post("/api/messages", json={"Body": "one more"})
        assert r.status_code == 429 and "wait" in r.json()["error"]


# -- users, peers, nick, commands -----------------------------------------------------------


async def test_users_are_who_is_online_by_presence_then_who_else_was_heard(nursery, web):
    with trio.fail_after(TIMEOUT):
        async with web.feed() as feed:
            bob = await start_node(nursery, nick="bob", peers=[web.node.addr])
            while len((await feed.until("users"))["online"]) < 2:
                pass
            bob.say("hi")
            peer = await origin(web.node)
            await send(peer, wire("yo", nick="carol"))
            await wait_messages(web, 2)
    body = (await web.client.get("/api/users")).json()
    online = [(u["Nick"], u["Addr"], u["You"]) for u in body["online"]]
    assert online == [("alice", web.node.addr, True), ("bob", bob.addr, False)]
    assert [u["Nick"] for u in body["heard"]] == ["carol"]  # bob spoke too, but is online
    assert body["me"]["Nick"] == "alice" and body["window"] == 600


async def test_peers_connect_list_and_disconnect(nursery, web):
    s = await sink(nursery)
    r = await web.client.post("/api/peers", json={"Addr": s.addr})
    assert r.status_code == 202 and r.json()["Addr"] == s.addr
    with trio.fail_after(TIMEOUT):
        await s.wait_for(lambda s: s.connections == 1)
    peers = (await web.client.get("/api/peers")).json()["peers"]
    assert [(p["Addr"], p["Direction"]) for p in peers] == [(s.addr, "out")]
    r = await web.client.delete(f"/api/peers/{s.addr}")
    assert r.status_code == 200 and r.json() == {"Addr": s.addr}
    assert (await web.client.get("/api/peers")).json()["peers"] == []
    r = await web.client.delete(f"/api/peers/{s.addr}")
    assert r.status_code == 404 and "no link to" in r.json()["error"]


async def test_an_incoming_connection_is_disconnected_too(web):
    with trio.fail_after(TIMEOUT):
        peer = await origin(web.node)
        while not (peers := (await web.client.get("/api/peers")).json()["peers"]):
            await trio.sleep(0.01)  # the node learns of it with no event: a poll
        assert [p["Direction"] for p in peers] == ["in"]
        r = await web.client.delete(f"/api/peers/{peers[0]['Addr']}")
        assert r.status_code == 200 and r.json() == {"Addr": peers[0]["Addr"]}
        assert (await web.client.get("/api/peers")).json()["peers"] == []
        while await peer.receive_some(4096):  # the greeting, then the close
            pass


@pytest.mark.parametrize("addr", ["nonsense", "1.2.3.4", "1.2.3.4:99999", "::1:5", ""])
async def test_an_address_that_is_not_host_port_is_400(web, addr):
    r = await web.client.post("/api/peers", json={"Addr": addr})
    assert r.status_code == 400 and r.json()["error"]
    if addr:
        assert (await web.client.delete(f"/api/peers/{addr}")).status_code in (400, 404)


async def test_nick_change_and_refusal(web):
    r = await web.client.put("/api/me", json={"Nick": " alicia "})
    assert r.status_code == 200 and r.json()["Nick"] == "alicia" and web.node.nick == "alicia"
    for bad in ["two words", "x" * 40, "bell\u0007"]:
        r = await web.client.put("/api/me", json={"Nick": bad})
        assert r.status_code == 400 and "nick" in r.json()["error"]
    assert web.node.nick == "alicia"


async def test_slash_commands_work_as_in_the_terminal_ui(web):
    r = (await web.client.post("/api/commands", json={"Line": "/help"})).json()
    assert r["lines"][0] == "commands:" and not r["clear"]
    assert (await web.client.post("/api/commands", json={"Line": "/clear"})).json()["clear"]
    r = (await web.client.post("/api/commands", json={"Line": "/bogus"})).json()
    assert "unknown command" in r["lines"][0]
    r = (await web.client.post("/api/commands", json={"Line": "/quit"})).json()
    assert "close the tab" in r["lines"][0]
    r = (await web.client.post("/api/commands", json={"Line": "/me waves"})).json()
    assert r["lines"] == []
    assert [m["Body"] for m in await wait_messages(web, 1)] == ["/me waves"]


# -- files ----------------------------------------------------------------------------------


async def test_upload_sends_a_file_message(nursery, web):
    s = await sink(nursery)
    await web.client.post("/api/peers", json={"Addr": s.addr})
    png = {"content-type": "image/png"}
    r = await web.client.post("/api/files", params={"name": "../cat.png"}, content=PNG, headers=png)
    assert r.status_code == 201 and r.json()["Name"] == "cat.png" and r.json()["Size"] == len(PNG)
    with trio.fail_after(TIMEOUT):
        await s.wait_for(lambda s: any("FileContents" in o for o in s.objects))
    sent = next(o for o in s.objects if "FileContents" in o)
    assert base64.b64decode(sent["FileContents"]) == PNG and sent["FileType"] == "image/png"


async def test_upload_refusals(web):
    assert (await web.client.post("/api/files", content=b"x")).status_code == 400  # no name
    too_big = b"x" * (web.server.bridge.max_file_size + 1)
    r = await web.client.post("/api/files", params={"name": "big.bin"}, content=too_big)
    assert r.status_code == 413
    assert (await web.client.get("/api/peers")).status_code == 200


async def test_received_files_download_as_attachments_and_only_rasters_preview(web):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    files = [("evil.svg", "image/svg+xml", svg), ("cat.png", "image/png", PNG)]
    with trio.fail_after(TIMEOUT):
        peer = await origin(web.node)
        sent = [
            wire(f"[file] {n}", nick="bob", FileName=n, FileType=t, FileContents=b64(d))
            for n, t, d in files
        ]
        await send(peer, *sent)
        messages = await wait_messages(web, 2)
    assert messages[0]["File"]["Name"] == "evil.svg" and not messages[0]["File"]["Preview"]
    listed = (await web.client.get("/api/files")).json()["files"]
    assert [(f["Number"], f["Name"], f["Preview"], f["From"]) for f in listed] == [
        (1, "evil.svg", False, "bob"),
        (2, "cat.png", True, "bob"),
    ]
    r = await web.client.get("/api/files/1")
    assert r.content == svg and r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith('attachment; filename="evil.svg"')
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in r.headers.get_list("content-security-policy")
    assert (await web.client.get("/api/files/1/preview")).status_code == 415
    r = await web.client.get("/api/files/2/preview")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content == PNG
    r = await web.client.get("/api/files/9")
    assert r.status_code == 404 and "no file #9" in r.json()["error"]


async def test_the_node_keeps_relaying_after_all_that(nursery, web):
    """Garbage at the API never disturbs the relay."""
    s = await sink(nursery)
    await web.client.post("/api/peers", json={"Addr": s.addr})
    for body in [b"[[[[", b"\x00\xff", b'{"Body": null}']:
        await web.client.post("/api/messages", content=body)
    with trio.fail_after(TIMEOUT):
        peer = await origin(web.node)
        await send(peer, wire("relayed", nick="bob"))
        await s.wait_for(lambda s: "relayed" in s.bodies)
