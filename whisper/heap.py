"""The cyclic garbage collector: the heap a peer starts with is frozen.

Rules:
- ``freeze_startup`` is called as the peer starts, before it listens (so that its pause, a
  collection, delays nothing a peer or a user sees): every object that exists then
  (modules, classes, functions, the imported libraries' tables: about 35,000 objects,
  46,000 with ``-http``'s hypercorn and starlette; the node and the web server add about
  1,000 more as they start) goes to the collector's permanent generation (``gc.freeze``),
  which no collection walks again.  Under a relay blast the collector makes a full
  collection every 20,000 messages or so, and walking that start-up heap was nearly all of
  its cost, and the largest part of what ``-http`` cost the relay with no browser attached.
- Nothing else changes: objects made later are collected as before, reference counting
  frees everything as before; a reference cycle made only of start-up objects that becomes
  garbage later is kept (there are next to none: start-up objects live as long as the
  process).
- Once per process (``FROZEN``): a later call (a second node in one test process) freezes
  nothing more, so objects of a run that ended are never pinned.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("whisper.heap")

FROZEN = False


def freeze_startup() -> int:
    """Freeze what exists now (see the rules); how many objects were frozen (0: done before)."""
    global FROZEN
    if FROZEN:
        return 0
    FROZEN = True
    gc.collect()  # start-up garbage goes now, not into the permanent generation
    gc.freeze()
    count = gc.get_freeze_count()
    log.debug("start-up heap frozen: %d objects the collector no longer walks", count)
    return count
