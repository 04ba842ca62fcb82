"""``GET /api/messages`` paging back (whisper/web/api.py) over loopback: with history on,
one cursor, the store's ``seq``, from the live ring back to the first stored message; with
history off, back to the oldest the ring holds."""

from __future__ import annotations

import httpx
import trio

from tests.helpers import start_node
from tests.store_helpers import record
from tests.test_store_peer import start_stored
from tests.webhelpers import AUTH, TOKEN
from whisper.store import History
from whisper.web import WebServer
from whisper.web.store import MessageRing

TIMEOUT = 20


async def serve(nursery: trio.Nursery, node, ring_size: int) -> httpx.AsyncClient:
    server = WebServer(node, "127.0.0.1", 0, token=TOKEN, ring=MessageRing(ring_size))
    await nursery.start(server.run)
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", headers=AUTH)


async def follow(client: httpx.AsyncClient, cursor: int, last: str) -> list[dict]:
    """What arrives after ``cursor``, until the message ``last``."""
    got: list[dict] = []
    with trio.fail_after(TIMEOUT):
        while not got or got[-1]["Body"] != last:
            r = await client.get("/api/messages", params={"since": cursor, "wait": 5})
            got += r.json()["messages"]
            cursor = r.json()["next"]
    return got


async def page_back(client: httpx.AsyncClient, limit: int) -> tuple[list[dict], int]:
    """Every message from the newest back, ``limit`` a request; and how many requests."""
    r = await client.get("/api/messages", params={"limit": limit})
    pages = [r.json()["messages"]]
    before, requests = r.json()["before"], 1
    while before is not None:
        r = await client.get("/api/messages", params={"before": before, "limit": limit})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["messages"]) <= limit
        pages.insert(0, body["messages"])
        before, requests = body["before"], requests + 1
    return [m for page in pages for m in page], requests


async def test_one_cursor_pages_back_from_the_live_ring_through_the_history(nursery, tmp_path):
    path = tmp_path / "h.sqlite3"
    with History.open(path) as history:
        history.add_messages([record(f"old {i}", nick="bob") for i in range(30)])
    node = await start_stored(nursery, path, nick="alice")
    async with await serve(nursery, node, ring_size=5) as client:
        start = (await client.get("/api/messages", params={"limit": 3})).json()
        assert [m["Body"] for m in start["messages"]] == ["old 27", "old 28", "old 29"]
        assert (start["next"], start["before"]) == (30, 28)  # the store's seqs
        for i in range(8):
            node.say(f"new {i}")
        live = await follow(client, start["next"], "new 7")
        assert [m["Seq"] for m in live] == list(range(31, 39))
        for m in live:  # the ring's number is the store's
            assert node.history.history.find(m["ID"]).seq == m["Seq"]
        everything, requests = await page_back(client, limit=7)
        bodies = [f"old {i}" for i in range(30)] + [f"new {i}" for i in range(8)]
        assert [m["Body"] for m in everything] == bodies
        assert [m["Seq"] for m in everything] == list(range(1, 39))
        assert requests == 6  # 38 messages, 7 a page (the newest 5 from the ring, 2 stored)
        assert [m["Own"] for m in everything] == [False] * 30 + [True] * 8
        # a cursor the ring has forgotten is answered from the history
        r = await client.get("/api/messages", params={"since": 28, "limit": 4})
        assert [m["Body"] for m in r.json()["messages"]] == ["old 28", "old 29", "new 0", "new 1"]
        assert r.json()["next"] == 32
        bad = await client.get("/api/messages", params={"since": 1, "before": 5})
        assert bad.status_code == 400 and "give one" in bad.json()["error"]
        bad = await client.get("/api/messages", params={"before": "x"})
        assert bad.status_code == 400


async def test_without_history_paging_back_stops_at_the_oldest_held(nursery):
    node = await start_node(nursery)
    async with await serve(nursery, node, ring_size=5) as client:
        for i in range(8):
            node.say(f"m {i}")
        await follow(client, 0, "m 7")
        everything, _ = await page_back(client, limit=2)
        assert [m["Body"] for m in everything] == [f"m {i}" for i in range(3, 8)]
        assert [m["Seq"] for m in everything] == list(range(4, 9))  # this run's numbers
        latest = (await client.get("/api/messages", params={"limit": 9})).json()
        assert len(latest["messages"]) == 5 and latest["before"] is None
        empty = await client.get("/api/messages", params={"before": 4})
        assert empty.json() == {"messages": [], "before": None}
