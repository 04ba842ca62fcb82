"""Trio as a guest on prompt_toolkit's asyncio loop: one thread for all of our code, no locks.

Rules:
- asyncio is the host loop: prompt_toolkit runs the ``Application`` on it.  Trio runs as a
  guest (``trio.lowlevel.start_guest_run``) and owns the node; the two take turns on the main
  thread (trio's own I/O wait runs in a helper thread of trio's, which calls no code of ours).
- Host code (key handlers, drawing) never calls trio directly: it hands work over with
  ``TrioToken.run_sync_soon``.  Trio code may call the ``Application`` (invalidate, exit):
  that is plain Python on the same thread.
- The trio side starts first, and the ``Application`` appears only once it reports
  ``started`` (the node is listening), so a failure to start is told on a normal terminal.
- Whichever side ends first ends the other: the ``Application`` exiting cancels the trio
  side; the trio side ending exits the ``Application``.  Either way the host waits for trio
  to finish (connections closed) and for prompt_toolkit to restore the terminal, and only
  then returns, or re-raises the trio side's error.  An exception group holding a
  single exception is unwrapped, so a caller sees e.g. the ``OSError`` of a port in use.
- EOF or an I/O error on the terminal (it went away: hangup, closed window) ends the
  ``Application`` as an exit; it is not the trio side's error, which is still raised.
- Signals are the trio side's business (``trio.open_signal_receiver``); prompt_toolkit is
  told not to handle SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio
from prompt_toolkit.application import Application

if TYPE_CHECKING:
    from outcome import Outcome

Stop = Callable[[], None]

log = logging.getLogger("whisper.tui")


def run(trio_fn: Callable[..., Awaitable[object]], app: Application[Any]) -> None:
    """Run ``app`` with ``trio_fn(task_status=...)`` as a trio guest; see the module rules."""
    asyncio.run(run_async(trio_fn, app))


async def run_async(trio_fn: Callable[..., Awaitable[object]], app: Application[Any]) -> None:
    loop = asyncio.get_running_loop()
    started: asyncio.Future[Stop] = loop.create_future()
    done: asyncio.Future[Outcome[None]] = loop.create_future()
    trio.lowlevel.start_guest_run(
        _guest,
        trio_fn,
        started,
        run_sync_soon_threadsafe=loop.call_soon_threadsafe,
        done_callback=done.set_result,
        host_uses_signal_set_wakeup_fd=True,
    )
    await asyncio.wait([started, done], return_when=asyncio.FIRST_COMPLETED)
    if not done.done():
        stop = started.result()

        def exit_app(_: object = None) -> None:
            if app.is_running and not app.is_done:
                app.exit()

        done.add_done_callback(exit_app)
        try:
            await app.run_async(
                pre_run=lambda: exit_app() if done.done() else None, handle_sigint=False
            )
        except (EOFError, OSError) as exc:  # the terminal went away: leave as if asked to
            log.info("the terminal is gone (%s): closing connections", exc)
        finally:
            stop()
            await asyncio.wait([done])
    _unwrap(done.result())


async def _guest(trio_fn: Callable[..., Awaitable[object]], started: asyncio.Future[Stop]) -> None:
    token = trio.lowlevel.current_trio_token()
    with trio.CancelScope() as scope:

        def stop() -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(scope.cancel)

        async with trio.open_nursery() as nursery:
            await nursery.start(trio_fn)
            started.set_result(stop)


def _unwrap(result: Outcome[None]) -> None:
    try:
        result.unwrap()
    except BaseExceptionGroup as group:
        leaf: BaseException = group
        while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
            leaf = leaf.exceptions[0]
        if leaf is group:
            raise
        raise leaf from None
