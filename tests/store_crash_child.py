"""Child process for the SIGKILL test: stores messages through the writer for ever, and
prints ``shown ID`` for each one the writer released (what a front end would show).

It produces as fast as the writer takes them (it waits when 2,000 are waiting), so that a
slow, loaded machine never makes the writer fall behind and switch history off."""

from __future__ import annotations

import os
import sys
import time

import trio

from whisper.message import Message
from whisper.store import History, Record
from whisper.store.writer import HistoryWriter


async def main(path: str) -> None:
    with History.open(path) as history:

        def show(tokens: list[str]) -> None:
            os.write(1, "".join(f"shown {t}\n" for t in tokens).encode())

        writer = HistoryWriter(history, show, lambda text: os.write(2, text.encode() + b"\n"))
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            await writer.call(history.peer_linked, "127.0.0.1:7001", time.time())
            os.write(1, b"peer linked\n")
            n = 0
            while True:
                for _ in range(50):
                    m = Message.create(
                        id=f"{os.getpid()}-{n}", addr="127.0.0.1:7001", body=f"m {n}"
                    )
                    writer.put(Record(m, time.time()), m.id)
                    n += 1
                if writer.waiting > 2000:
                    await writer.flush()
                await trio.sleep(0)


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
