"""The command-line flags of the history (issue 12): ``-history PATH``, ``-no-history``,
``-history-days N``.

Rules: a bad ``-history-days`` is a ``ValueError`` naming the flag (a usage error).  A history
that cannot be opened (taken by another whisper, damaged, read-only, full ...) is not: the
peer starts without history, and ``open_stage`` returns the one line that says so and what
to do, for the CLI to print.
"""

from __future__ import annotations

import argparse
import math

from ..files_io import user_path
from .db import History
from .dbfile import default_path
from .errors import HistoryError
from .stage import HistoryStage


def add_history_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-history",
        "--history",
        default=None,
        metavar="PATH",
        help=f"keep the messages shown and the peers linked to there (default {default_path()})",
    )
    parser.add_argument(
        "-no-history", "--no-history", action="store_true", help="keep no history at all"
    )
    parser.add_argument(
        "-history-days",
        "--history-days",
        type=float,
        default=None,
        metavar="N",
        help="forget messages older than N days (default: keep everything)",
    )


def check_history_flags(args: argparse.Namespace) -> None:
    days = args.history_days
    if days is not None and not (math.isfinite(days) and days > 0):
        raise ValueError("-history-days must be a positive number of days")
    if args.no_history and args.history is not None:
        raise ValueError("-history and -no-history: choose one")


def open_stage(args: argparse.Namespace) -> tuple[HistoryStage | None, str | None]:
    """The history stage the flags ask for, or None and why not (one line) if it failed."""
    if args.no_history:
        return None, None
    try:
        path = default_path() if args.history is None else user_path(args.history)
        history = History.open(path)
    except HistoryError as exc:
        return None, f"history is off: {exc} (or run with -no-history)"
    except Exception as exc:  # user_path's FileError and the like: still one line
        return None, f"history is off: -history {args.history}: {exc}"
    return HistoryStage(history, days=args.history_days), None
