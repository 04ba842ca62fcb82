"""Nick pins (extension 13) kept in the history store, so a restarted peer knows them.

Rules:
- On attach (before the node starts) the stored pins are loaded into the node's pin table
  (``PinTable.restore``: trust on first use survives a restart, and an impostor of a nick
  pinned last week is still marked).  Without a history store (``-no-history``) pins live
  in memory only.
- The table is saved whole (``History.save_pins``) in the writer's thread, every
  ``SAVE_EVERY`` seconds when it changed (``PinTable.changes``), and once more when the node
  stops: a peer killed outright loses at most that many seconds of pins.
- A store error while saving or loading is logged; pins stay in memory.
"""

from __future__ import annotations

import logging

import trio

from ..identity.pins import PinTable
from .db import History
from .errors import HistoryError
from .writer import HistoryWriter

SAVE_EVERY = 5.0

log = logging.getLogger("whisper.store")


def load(history: History, pins: PinTable) -> int:
    """Restore the stored pins into ``pins``; how many were added."""
    try:
        return pins.restore(history.load_pins())
    except HistoryError as exc:
        log.warning("history: pins not loaded: %s", exc)
        return 0


class PinSaver:
    """Saves one pin table into one history store when it changed."""

    def __init__(self, history: History, pins: PinTable) -> None:
        self.history = history
        self.pins = pins
        self.saved = pins.changes  # what was loaded is stored already

    async def run(self, writer: HistoryWriter) -> None:
        """Every ``SAVE_EVERY`` seconds, save the table if it changed (the writer's thread)."""
        while True:
            await trio.sleep(SAVE_EVERY)
            if self.pins.changes != self.saved and writer.on:
                changes = self.pins.changes
                records = self.pins.records()
                try:
                    await writer.call(self.history.save_pins, records)
                except HistoryError as exc:
                    log.warning("history: pins not saved: %s", exc)
                else:
                    self.saved = changes

    def save_now(self) -> None:
        """Save at once, in this thread (the node has stopped: no writer runs)."""
        if self.pins.changes == self.saved:
            return
        try:
            self.history.save_pins(self.pins.records())
        except HistoryError as exc:
            log.warning("history: pins not saved: %s", exc)
        else:
            self.saved = self.pins.changes
