"""Running cases: each against its own peer process (or the --target), with a deadline.

Rules:
- A case's timeout starts once the peer listens; starting it has its own timeout.  A case
  that overruns fails with the step it was at.
- ``CaseFailed`` is a FAIL with its detail.  Any other exception is a bug in the suite, also
  reported as FAIL (``suite error: ...``) so that it can never pass silently.
- A ``fresh`` case with a ``--target`` peer is SKIPPED with the reason; so is a ``udp`` case
  when the peer's discovery port is unknown, and a case that raises ``CaseSkipped``.
- With ``--cmd`` and a fixed ``--discovery-port``, every peer started binds that UDP port,
  so cases run one at a time (``parallel_jobs``).
- ``run_cases`` runs up to ``jobs`` cases at a time and reports results in case order.
- ``start_problem`` starts a ``--cmd`` peer once before the cases: one that cannot start is
  a start-up error (exit 2), not a FAIL per case.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass

import trio

from .context import CaseFailed, CaseSkipped, open_context
from .harness import PeerStartError, PeerUnderTest, Target, open_peer
from .registry import Case

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
GRACE = 1.0  # lets a case's own, more precise, timeout message win


@dataclass(frozen=True)
class Result:
    case: str
    level: str
    section: str
    result: str
    detail: str
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


async def run_case(
    case: Case, target: Target, *, timeout: float = 20.0, startup_timeout: float = 15.0
) -> Result:
    started = trio.current_time()
    if case.fresh and not target.can_spawn:
        status, detail = SKIP, "needs a fresh peer process (it may crash one): run with --cmd"
    elif case.udp and (missing := target.udp_missing()):
        status, detail = SKIP, missing
    else:
        try:
            async with open_peer(target, startup_timeout) as peer:
                status, detail = await _run_against(case, peer, timeout)
        except PeerStartError as exc:
            status, detail = FAIL, f"the peer did not start: {exc}"
        except Exception as exc:
            status, detail = FAIL, f"suite error: {_describe(exc)}"
    seconds = round(trio.current_time() - started, 2)
    return Result(case.name, case.level, case.section, status, detail, seconds)


async def _run_against(case: Case, peer: PeerUnderTest, timeout: float) -> tuple[str, str]:
    async with open_context(peer, timeout) as ctx:
        with trio.move_on_at(ctx.deadline + GRACE):
            try:
                return PASS, await case.run(ctx)
            except CaseFailed as exc:
                return FAIL, exc.detail
            except CaseSkipped as exc:
                return SKIP, exc.reason
        return FAIL, f"timed out after {timeout:.0f}s while {ctx.step}"


async def run_cases(
    cases: list[Case],
    target: Target,
    *,
    jobs: int = 1,
    timeout: float = 20.0,
    startup_timeout: float = 15.0,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Run ``cases``; ``on_result`` is called in case order as results become available."""
    results: list[Result | None] = [None] * len(cases)
    limiter = trio.CapacityLimiter(parallel_jobs(target, jobs))
    reported = 0

    async def one(index: int, case: Case) -> None:
        nonlocal reported
        async with limiter:
            results[index] = await run_case(
                case, target, timeout=timeout, startup_timeout=startup_timeout
            )
        while reported < len(results) and (ready := results[reported]) is not None:
            if on_result:
                on_result(ready)
            reported += 1

    async with trio.open_nursery() as nursery:
        for index, case in enumerate(cases):
            nursery.start_soon(one, index, case)
    return [r for r in results if r is not None]


async def start_problem(target: Target, startup_timeout: float) -> str | None:
    """Start a ``--cmd`` peer once, before any case: why it cannot start, or None.  A
    command that cannot run is then one error, not a FAIL per case."""
    if not target.can_spawn:
        return None
    try:
        async with open_peer(target, startup_timeout):
            return None
    except PeerStartError as exc:
        return str(exc)


def parallel_jobs(target: Target, jobs: int) -> int:
    """How many cases may run at once: ``jobs``, or 1 when every peer started would bind
    the same fixed UDP discovery port (each would then hear only some datagrams)."""
    return 1 if target.fixed_udp_shared else max(1, jobs)


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"
