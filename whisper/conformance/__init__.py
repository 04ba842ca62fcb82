"""whisper-conformance: a black-box protocol conformance suite for any whispernet peer.

The suite starts the peer under test from a command template (a fresh process per case) or
talks to one already running, plays fake peers around it over TCP on loopback, and checks
what crosses the network against PROTOCOL.md.  It never reads the peer's output: only bytes
on its connections, connections accepted, refused or closed, and the process's exit status.

Modules: ``harness`` (starting and stopping the peer), ``fakes`` (fake peers and
connections), ``context`` (what a case works with), ``registry`` (cases and levels),
``runner`` (deadlines, parallel runs, results), ``cli`` (options, table, JSON), ``cases/``
(one module per level).
"""

from .context import CaseContext, CaseFailed, CaseSkipped
from .harness import Target
from .registry import LEVELS, Case, all_cases, select
from .runner import FAIL, PASS, SKIP, Result, run_case, run_cases

__all__ = [
    "FAIL",
    "LEVELS",
    "PASS",
    "SKIP",
    "Case",
    "CaseContext",
    "CaseFailed",
    "CaseSkipped",
    "Result",
    "Target",
    "all_cases",
    "run_case",
    "run_cases",
    "select",
]
