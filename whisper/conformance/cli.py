"""``whisper-conformance``: run the conformance cases against a peer and report.

Rules:
- Exactly one of ``--cmd TEMPLATE`` (a fresh peer per case) or ``--target HOST:PORT`` (a
  running peer; cases that need a fresh process are skipped), unless ``--list``.
- Discovery cases need the peer's UDP discovery port: ``{udp}`` in the template, or
  ``--discovery-port N`` (with ``--cmd`` it is then fixed, and cases run one at a time).
- A ``--cmd`` peer is started once before the cases (``start_problem``): one that cannot
  run, or exits or never listens, is one line on stderr and exit 2, and no case is run.
- Output: a header naming the target (and the program a ``--cmd`` resolved to), one table
  row per case (case, level, PROTOCOL.md section, PASS/FAIL/SKIP, what was seen), printed
  in case order as results arrive, then the summary line ``N passed, N failed, N skipped``.
  ``--json FILE`` writes the same results for machines.
- Exit status: 0 if every selected case passed, 1 if any failed, 3 if none failed but some
  were skipped, 2 for a usage error or a peer that cannot start.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import trio

from ..addr import AddressError, parse_hostport
from .harness import LOCALHOST, Target, program_of
from .registry import ASKED_ONLY, LEVELS, Case, select
from .runner import FAIL, PASS, SKIP, Result, run_cases, start_problem

NAME_WIDTH = 22
LEVEL_WIDTH = 13
SECTION_WIDTH = 10


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        self.exit(2, f"whisper-conformance: {message} (see whisper-conformance -h)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="whisper-conformance",
        description="Black-box whispernet protocol conformance suite (PROTOCOL.md).",
        epilog="example: whisper-conformance"
        " --cmd 'whisper -host 127.0.0.1 -port {port} -discovery-port {udp} -headless'",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--cmd",
        metavar="TEMPLATE",
        help="command starting the peer under test; {port} (and {port2}, {port3} ...) are"
        " replaced by free TCP ports, {udp} by a free UDP port for its discovery port;"
        " a fresh process per case",
    )
    which.add_argument("--target", metavar="HOST:PORT", help="a peer that is already running")
    p.add_argument(
        "--level",
        help=f"comma-separated levels to run, of {','.join(LEVELS)} (default: all"
        + (f" but {','.join(sorted(ASKED_ONLY))})" if ASKED_ONLY else ")"),
    )
    p.add_argument("--case", action="append", default=[], metavar="NAME", help="only this case")
    p.add_argument(
        "--timeout", type=float, default=20.0, metavar="SECONDS", help="per case (default 20)"
    )
    p.add_argument(
        "--startup-timeout",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="for a --cmd peer to start listening (default 15)",
    )
    p.add_argument("--jobs", type=int, default=4, help="cases run at once (default 4)")
    p.add_argument(
        "--peer-host",
        default=LOCALHOST,
        metavar="IP",
        help="address where a --cmd peer listens (default 127.0.0.1)",
    )
    p.add_argument(
        "--discovery-port",
        type=int,
        metavar="N",
        help="the peer's UDP discovery port, for the discovery cases: needed with --target;"
        " with --cmd it fills {udp} (or stands for a port the peer always binds) and cases"
        " then run one at a time",
    )
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        levels = [name.strip() for name in (args.level or "").split(",") if name.strip()]
        names = [n.strip() for item in args.case for n in item.split(",") if n.strip()]
        cases = select(levels, names)
    except ValueError as exc:
        parser.error(str(exc))
    if args.list:
        for c in cases:
            fresh = "  (fresh process)" if c.fresh else ""
            print(
                f"{c.name:<{NAME_WIDTH}} {c.level:<{LEVEL_WIDTH}} {c.section:<11} {c.checks}{fresh}"
            )
        return 0
    target = _target(parser, args)
    problem = trio.run(start_problem, target, args.startup_timeout)
    if problem:
        print(f"whisper-conformance: the peer does not start: {problem}", file=sys.stderr)
        return 2
    print(f"whisper-conformance: {len(cases)} cases against {_describe(target)}", flush=True)
    print(_row("case", "level", "section", "result", "detail"), flush=True)
    results = trio.run(_run, cases, target, args)
    summary = {s: sum(1 for r in results if r.result == s) for s in (PASS, FAIL, SKIP)}
    line = f"{summary[PASS]} passed, {summary[FAIL]} failed, {summary[SKIP]} skipped"
    if args.json:
        _write_json(args.json, target, results, summary)
    print(line, flush=True)
    if summary[FAIL]:
        return 1
    return 3 if summary[SKIP] else 0


def _target(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Target:
    udp = args.discovery_port
    if udp is not None and not 1 <= udp <= 65535:
        parser.error(f"--discovery-port {udp}: must be 1-65535")
    if args.cmd:
        if "{port}" not in args.cmd:
            parser.error("--cmd needs a {port} field for the port the peer listens on")
        return Target(host=args.peer_host, cmd=args.cmd, discovery_port=udp)
    if args.target:
        try:
            host, port = parse_hostport(args.target)
        except AddressError as exc:
            parser.error(f"--target: {exc}")
        return Target(host=host, port=port, discovery_port=udp)
    parser.error("give --cmd TEMPLATE or --target HOST:PORT")
    raise AssertionError("unreachable")


async def _run(cases: list[Case], target: Target, args: argparse.Namespace) -> list[Result]:
    def show(result: Result) -> None:
        detail = f"{result.detail} ({result.seconds:.1f}s)"
        print(_row(result.case, result.level, result.section, result.result, detail), flush=True)

    return await run_cases(
        cases,
        target,
        jobs=args.jobs,
        timeout=args.timeout,
        startup_timeout=args.startup_timeout,
        on_result=show,
    )


def _row(name: str, level: str, section: str, result: str, detail: str) -> str:
    section = section.replace(", ", ",")  # one word per column, for those who split rows
    head = f"{name:<{NAME_WIDTH}} {level:<{LEVEL_WIDTH}} {section:<{SECTION_WIDTH}}"
    return f"{head} {result:<6} {detail}"


def _describe(target: Target) -> str:
    text = target.describe()
    if target.cmd:
        name, program = program_of(target.cmd)
        if program != name:
            text += f"  ({name}: {program})"
    return text


def _write_json(path: str, target: Target, results: list[Result], summary: dict) -> None:
    doc = {
        "target": target.describe(),
        "results": [r.as_dict() for r in results],
        "passed": summary[PASS],
        "failed": summary[FAIL],
        "skipped": summary[SKIP],
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
