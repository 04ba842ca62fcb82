"""``whisper-history`` (also ``python -m whisper.store``): the history for scripts.

Usage::

    whisper-history export [--db PATH] [--format jsonl|text] [--utc] OUT
    whisper-history search [--db PATH] [--format jsonl|text] [--utc] [--limit N] WORDS...

Rules:
- ``--db`` defaults to the history in the user's data directory (``dbfile.default_path``).
- Both read the file read-only, without its lock: they work while a whisper is running.
- ``export`` writes every message, oldest first, to OUT: a new file (created 0600, never
  overwritten) or ``-`` for stdout; formats as in ``export.py``.  ``search`` prints the
  ``--limit`` newest messages holding every word (``query.py``), oldest first.
- A problem prints one line to stderr and exits 1 (2 for bad usage), never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .db import search
from .dbfile import default_path
from .errors import HistoryError
from .export import FORMATS, export, json_line, open_reader, text_line, write_export

PROG = "whisper-history"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        self.exit(2, f"{PROG}: {message} (see {PROG} -h)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Read whisper's message history.", allow_abbrev=False)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common = _Parser(add_help=False)
    common.add_argument(
        "--db", type=Path, default=None, help=f"the history (default {default_path()})"
    )
    common.add_argument("--format", choices=FORMATS, default=None, help="output format")
    common.add_argument("--utc", action="store_true", help="text times in UTC, not local time")
    e = sub.add_parser("export", parents=[common], help="write the whole log to OUT")
    e.add_argument("out", metavar="OUT", help="a new file, or - for stdout")
    s = sub.add_parser("search", parents=[common], help="print the messages holding WORDS")
    s.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    s.add_argument("words", nargs="+", metavar="WORDS")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    db = args.db or default_path()
    try:
        if args.command == "export":
            fmt = args.format or "jsonl"
            if args.out == "-":
                write_export(db, sys.stdout, fmt, utc=args.utc)
            else:
                count = export(db, args.out, fmt, utc=args.utc)
                print(f"{PROG}: wrote {count} messages to {args.out}", file=sys.stderr)
        else:
            fmt = args.format or "text"
            conn = open_reader(db)
            try:
                found = search(conn, " ".join(args.words), args.limit)
            finally:
                conn.close()
            for s in reversed(found):
                sys.stdout.write(json_line(s) if fmt == "jsonl" else text_line(s, utc=args.utc))
    except HistoryError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except FileExistsError:
        print(f"{PROG}: {args.out} exists: give a new file name", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{PROG}: {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
