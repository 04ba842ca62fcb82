"""The terminal UI: a prompt_toolkit chat screen with trio running as a guest on its loop.

Modules: ``render`` (display lines, all peer text cleaned), ``wrap`` (lines laid out on
the width), ``scrollback`` (the message area and its view), ``app`` (screen and keys),
``completion``, ``history`` (persisted input history), ``guest`` (trio on asyncio) and
``session`` (the node joined to the screen; ``run_tui`` is the entry point).
"""

from .app import ChatUI
from .session import Session, run_tui

__all__ = ["ChatUI", "Session", "run_tui"]
