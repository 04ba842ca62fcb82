"""The list of conformance cases, each with its level and the PROTOCOL.md rule it checks.

Rules:
- A case is an async function taking a ``CaseContext`` and returning a one-line detail of
  what it saw when the peer passed; it raises ``CaseFailed(detail)`` when the peer did not.
- Names are unique across levels.  Levels run in ``LEVELS`` order, cases in definition order.
- ``fresh=True`` marks a case that a non-conforming peer may not survive (it sends what
  crashes some peers); it needs a peer process of its own and is skipped with ``--target``.
- ``udp=True`` marks a case that sends UDP discovery datagrams (to 127.0.0.1 only): it needs
  the peer's discovery port (``{udp}`` in the ``--cmd`` template, or ``--discovery-port``)
  and is skipped without it.
- A level in ``ASKED_ONLY`` runs only when asked for by name (``--level NAME``):
  ``select()`` without levels gives ``DEFAULT_LEVELS``.  ``all_cases()`` is every case.
  None is now (``identity`` was, until whisper's own peer checked signatures).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import CaseContext

LEVELS = (
    "core",
    "hashed-id",
    "timestamp",
    "limits",
    "backpressure",
    "discovery",
    "files",
    "backlog",
    "hello",
    "routing",
    "flood-control",
    "identity",
)
#: Levels for extensions that whisper's own peer does not implement yet: run when asked.
ASKED_ONLY: frozenset[str] = frozenset()
DEFAULT_LEVELS = tuple(level for level in LEVELS if level not in ASKED_ONLY)

CaseFn = Callable[["CaseContext"], Awaitable[str]]


@dataclass(frozen=True)
class Case:
    name: str
    level: str
    section: str  # e.g. "§5.1"
    checks: str  # one line: what a conforming peer does
    run: CaseFn
    fresh: bool = False
    udp: bool = False  # needs the peer's UDP discovery port


_CASES: list[Case] = []


def case(
    level: str, name: str, section: str, checks: str, *, fresh: bool = False, udp: bool = False
) -> Callable[[CaseFn], CaseFn]:
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}")

    def register(fn: CaseFn) -> CaseFn:
        if any(c.name == name for c in _CASES):
            raise ValueError(f"duplicate case name {name!r}")
        _CASES.append(Case(name, level, section, checks, fn, fresh, udp))
        return fn

    return register


def all_cases() -> list[Case]:
    from . import cases  # noqa: F401  (importing the modules registers their cases)

    order = {level: i for i, level in enumerate(LEVELS)}
    return sorted(_CASES, key=lambda c: order[c.level])  # stable: definition order kept


def select(levels: Iterable[str] | None = None, names: Iterable[str] | None = None) -> list[Case]:
    """Cases of the given levels (default: ``DEFAULT_LEVELS``), narrowed to ``names`` if given
    (a case named is run whatever its level)."""
    wanted_levels = set(levels or (LEVELS if names else DEFAULT_LEVELS))
    unknown = wanted_levels - set(LEVELS)
    if unknown:
        raise ValueError(f"unknown level(s): {', '.join(sorted(unknown))}")
    chosen = [c for c in all_cases() if c.level in wanted_levels]
    if names:
        wanted = set(names)
        missing = wanted - {c.name for c in all_cases()}
        if missing:
            raise ValueError(f"unknown case(s): {', '.join(sorted(missing))}")
        chosen = [c for c in chosen if c.name in wanted]
    return chosen
