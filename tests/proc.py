"""Run ``whisper`` as a real subprocess and read its output line by line."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import trio

#: ``-v``: headless shows link-level lines (``connected to ...``) only then, and tests wait
#: for them.
WHISPER = [sys.executable, "-m", "whisper", "-v"]


class Whisper:
    def __init__(self, *args: str) -> None:
        self.args = [*WHISPER, *args]
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.addr = ""
        self._changed = trio.Event()
        self.process: trio.Process | None = None

    async def start(
        self, nursery: trio.Nursery, *, wait_listening: bool = True, **popen: Any
    ) -> Whisper:
        """``popen``: more arguments for ``subprocess.Popen`` (``preexec_fn`` ...)."""
        pipe = subprocess.PIPE
        self.process = await trio.lowlevel.open_process(
            self.args, stdin=pipe, stdout=pipe, stderr=pipe, **popen
        )
        nursery.start_soon(self._reap)
        nursery.start_soon(self._pump, self.process.stdout, self.stdout)
        nursery.start_soon(self._pump, self.process.stderr, self.stderr)
        if wait_listening:
            line = await self.wait_line("stderr", r"^listening on (\S+)$")
            self.addr = re.match(r"^listening on (\S+)$", line).group(1)
        return self

    async def _reap(self) -> None:
        """Kill the process when the test's nursery ends, however the test went."""
        try:
            await trio.sleep_forever()
        finally:
            if self.process is not None and self.process.returncode is None:
                self.process.kill()

    async def _pump(self, stream: trio.abc.ReceiveStream, lines: list[str]) -> None:
        buffer = b""
        async with stream:
            while data := await stream.receive_some(65536):
                buffer += data
                *complete, buffer = buffer.split(b"\n")
                lines.extend(c.decode("utf-8", "replace") for c in complete)
                self._changed.set()
                self._changed = trio.Event()
        if buffer:
            lines.append(buffer.decode("utf-8", "replace"))
        self._changed.set()

    async def wait_line(self, which: str, pattern: str) -> str:
        lines = self.stdout if which == "stdout" else self.stderr
        while True:
            for line in lines:
                if re.search(pattern, line):
                    return line
            if (
                self.process is not None
                and self.process.returncode is not None
                and not (await self._settle())
            ):
                raise AssertionError(f"exited {self.process.returncode}; {which}: {lines}")
            await self._changed.wait()

    async def _settle(self) -> bool:
        await trio.sleep(0)  # let the pumps drain after exit
        return False

    async def type(self, *lines: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        await self.process.stdin.send_all("".join(f"{line}\n" for line in lines).encode())

    async def close_stdin(self) -> None:
        assert self.process is not None and self.process.stdin is not None
        await self.process.stdin.aclose()

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
        return await self.process.wait()


async def run(*args: str, timeout: float = 30) -> tuple[int, str, str]:
    """Run whisper to completion (for the error paths)."""
    with trio.fail_after(timeout):
        result = await trio.run_process(
            [*WHISPER, *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1 and "Traceback" not in text


__all__: Sequence[str] = ["Whisper", "one_line", "run"]
