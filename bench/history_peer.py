"""A whisper peer with the history store attached, for ``bench_history.py --relay``.

``python bench/history_peer.py [--history PATH] WHISPER-FLAGS...`` runs ``whisper`` (its own
command line, headless) and, with ``--history``, stores every message it delivers through a
``HistoryWriter``.  Until the engine issue gives the relay a store stage, the store is fed
the only way the node allows from outside: a second ``Node.subscribe()``, each ``Delivered``
event made a ``Record`` and put to the writer on the event loop, the SQLite work in the
writer's thread.  That is the cost the stage will add (plus a subscription's), without the
display waiting for the commit (headless output is discarded in the bench anyway).  On
SIGTERM it prints one ``history: ...`` line of counts to stderr, and to ``PATH.stats``.
"""

from __future__ import annotations

import sys
import time

import trio

from whisper import Delivered, cli, headless
from whisper.node import Node
from whisper.store import History, Record
from whisper.store.writer import HistoryWriter

#: Events the store's subscription may hold: a blast must not be dropped before the writer.
BUFFER = 1_000_000


async def store(node: Node, path: str) -> None:
    history = await trio.to_thread.run_sync(History.open, path)
    writer = HistoryWriter(history, lambda tokens: None, lambda text: print(text, file=sys.stderr))
    put = writer.put
    events = None
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            with node.subscribe(buffer=BUFFER, max_bytes=1 << 30) as events:
                async for event in events:
                    while True:  # take all that waits: a receive is a trip through the scheduler
                        if type(event) is Delivered:
                            put(Record.of(event, time.time()), None)
                        try:
                            event = events.receive_nowait()
                        except trio.WouldBlock:
                            break
    finally:
        s = writer.stats
        dropped = events.dropped if events is not None else 0
        line = (
            f"stored {s.stored:,} in {s.batches:,} batches (largest {s.largest_batch:,},"
            f" longest commit {s.longest_commit * 1000:.0f} ms), {dropped:,} events dropped,"
            f" history {'on' if writer.on else 'off'}"
        )
        print(f"history: {line}", file=sys.stderr, flush=True)
        with open(path + ".stats", "w") as f:  # for bench_history.py (it reads no stderr)
            f.write(line + "\n")
        history.close()


def main() -> int:
    argv = sys.argv[1:]
    path = None
    if argv[:1] == ["--history"]:
        path, argv = argv[1], argv[2:]
    if path is not None:
        plain = headless.run_headless

        async def with_history(node: Node, **kw) -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store, node, path)
                await plain(node, **kw)
                nursery.cancel_scope.cancel()

        headless.run_headless = with_history  # cli imports it when it starts the front end
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
