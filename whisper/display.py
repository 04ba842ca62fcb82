"""What every front end shows of a message besides its sender: history marks and files.

Rules (shared by the headless mode and the terminal UI, and meant for the web UI):

- A ``Delivered`` event with ``history`` set (``backlog.is_history``) is shown marked as
  history, with the time it was written (its Timestamp), not the time it arrived.
- History is shown in timestamp order.  ``take_batch`` hands a front end everything that is
  waiting; when that includes history (a replay, which comes in a burst, possibly from
  several peers at once) it keeps collecting until nothing has arrived for
  ``HISTORY_SETTLE`` seconds (at most ``HISTORY_HOLD``).  ``in_display_order`` then puts the
  batch's history first, oldest first, and the rest after it in arrival order.
- A received file is shown as ``[file #N] name (size, type)  /save N``, from what was
  actually received, not from what its Body claims; a rejected file shows the Body and then
  ``[file rejected: reason]``.  Every string here still goes through the front end's own
  sanitising (``sanitize.for_terminal``) before it reaches a screen.
- With identities on (extension 13, ``event.ident``) a message shows its text (a DM's
  plaintext, a channel message's text without ``[#room] ``), from the nick it was signed
  with, after ``identity_marks``: ``[#room]``, ``[direct]`` (``[direct to NICK]`` for ours),
  and its trust when it is not verified: ``[unsigned]``, ``[IMPOSTOR 12345 67890]`` (the
  short fingerprint of the key it was signed with), ``[signed 12345 67890]`` (a nick that
  cannot be bound).  A verified message carries no trust mark: it is the usual case.
"""

from __future__ import annotations

import time

import trio

from .events import Delivered, Event
from .files import RejectedFile, StoredFile
from .identity.pins import Trust
from .message import Message
from .subscription import Subscription

HISTORY_SETTLE = 0.2
HISTORY_HOLD = 2.0


def written_at(message: Message) -> float | None:
    """Wall-clock seconds of the message's Timestamp, None without one."""
    ms = message.timestamp_ms
    return None if ms is None else ms / 1000.0


def history_stamp(message: Message) -> str:
    """``HH:MM`` (local time) when the message was written, for a history mark."""
    when = written_at(message)
    return "" if when is None else time.strftime("%H:%M", time.localtime(when))


def shown_body(event: Delivered) -> str:
    """The text to show for a message: its Body, or what a file message carries."""
    file = event.file
    if isinstance(file, StoredFile):
        return f"[file #{file.number}] {file.describe()}  /save {file.number}"
    ident = event.ident
    body = event.message.body if ident is None else ident.text
    if isinstance(file, RejectedFile):
        return f"{body}  [file rejected: {file.reason}]"
    return body


def shown_sender(event: Delivered) -> str:
    """Who to show as the sender: the nick (a DM's is inside it), or the Addr."""
    ident = event.ident
    if ident is not None and ident.direct:
        return ident.nick or event.message.addr
    return event.message.sender


def identity_marks(event: Delivered) -> str:
    """``[#room] [direct] [unsigned] ``...: what extension 13 says of it (module rules)."""
    ident = event.ident
    if ident is None:
        return ""
    marks = []
    if ident.channel:
        marks.append(f"[{ident.channel}]")
    if ident.direct:
        marks.append(f"[direct to {ident.to}]" if ident.to else "[direct]")
    if ident.trust is Trust.UNSIGNED:
        marks.append("[unsigned]")
    elif ident.trust is Trust.IMPOSTOR:
        marks.append(f"[IMPOSTOR {ident.short}]")
    elif ident.trust is Trust.UNBOUND:
        marks.append(f"[signed {ident.short}]")
    return "".join(f"{m} " for m in marks)


def _is_history(event: Event) -> bool:
    return type(event) is Delivered and event.history


def in_display_order(batch: list[Event]) -> list[Event]:
    """History first, by Timestamp; then everything else in arrival order."""
    history = [e for e in batch if _is_history(e)]
    if not history:
        return batch
    history.sort(key=lambda e: e.message.timestamp_ms or 0)  # type: ignore[union-attr]
    return history + [e for e in batch if not _is_history(e)]


def _take_waiting(events: Subscription, batch: list[Event]) -> None:
    while True:
        try:
            batch.append(events.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            return


async def take_batch(
    events: Subscription,
    batch: list[Event],
    *,
    settle: float = HISTORY_SETTLE,
    hold: float = HISTORY_HOLD,
) -> list[Event]:
    """Add what is waiting to ``batch`` (events already received), wait out a burst of
    history, and return the batch in display order."""
    _take_waiting(events, batch)
    if any(_is_history(e) for e in batch):
        with trio.move_on_after(hold):
            while True:
                with trio.move_on_after(settle):
                    try:
                        batch.append(await events.receive())
                    except trio.EndOfChannel:
                        break
                    _take_waiting(events, batch)
                    continue
                break
    return in_display_order(batch)
