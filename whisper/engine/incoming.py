"""One incoming connection as the engine sees it: the handle its shell task passes back.

Rules:
- Created by ``Engine.open_incoming`` for a connection the peer table and flood control let
  in; the shell feeds its bytes to ``Engine.receive_data`` and tells ``closed_incoming``.
- It owns the connection's decoder (``codec.py``), its flood-control state (``flood.py``)
  and the count of invalid messages it sent (the first ``LOGGED_PER_CONNECTION`` logged).
- ``closed`` is set, with the reason, once the engine has decided to drop it (or the shell
  said it ended: ``closed_incoming``); from then on whatever else arrives on it is
  discarded, and the shell stops reading.
- Flood control paces a connection (a work token per object, ``flood.py``): out of tokens,
  the engine keeps the objects not yet handled in ``pending`` and sets ``resume_at``; the
  shell reads nothing more (TCP pushes back on the sender) until then, and hands them back
  with ``Engine.resume``.
- A shell that verifies off the event loop feeds a chunk in two steps: ``Engine.decode``,
  then (once the batch of ``Check`` work is done, ``prechecked``) ``Engine.receive_items``.
- What the unfinished messages of all connections hold together is bounded by one receive
  budget (``budget.py``, PROTOCOL.md §5.3): ``over_budget`` charges a connection after each
  chunk and names those to drop while it is spent, the one holding the most first.
- ``addr`` and ``caps``: the listening address and the capabilities its writer's hello
  named (hello.py); None and empty until one comes (the Go peer never writes one).
- ``reverse``: our link to its writer when that link is written on this very connection
  (two-way, ``twoway.py``); it ends with the connection.
- ``greeting``: bytes the shell writes once when the connection is accepted
  (``Engine.greeting``, empty today: a capability banner plugs in there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..budget import Budget
from ..codec import Decoder, Violation
from ..flood import Connection as FloodConnection

if TYPE_CHECKING:
    from ..peers import Peer

LOGGED_PER_CONNECTION = 10


class Incoming:
    __slots__ = (
        "addr",
        "caps",
        "closed",
        "decoder",
        "flood",
        "greeting",
        "invalid",
        "pending",
        "prechecked",
        "remote",
        "resume_at",
        "reverse",
    )

    def __init__(self, remote: str, decoder: Decoder, flood: FloodConnection | None) -> None:
        self.remote = remote
        self.decoder = decoder
        self.flood = flood
        self.invalid = 0
        self.closed: str | None = None
        self.greeting = b""
        self.addr: str | None = None  # the Addr of its hello
        self.caps: frozenset[str] = frozenset()  # what its hello says its writer speaks
        self.reverse: Peer | None = None  # our link to its writer, on it (twoway.py)
        self.pending: list[dict[str, Any] | Violation] = []  # decoded, not yet handled
        self.resume_at: float | None = None  # paced: handle ``pending`` from then on
        #: What ``Check`` stages worked out ahead (off the event loop) for objects not yet
        #: handled, by message ID; emptied once none wait (``Engine.receive_items``).
        self.prechecked: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<Incoming {self.remote}{' closed' if self.closed else ''}>"


def over_budget(budget: Budget[Incoming], conn: Incoming) -> list[tuple[Incoming, str]]:
    """Charge what ``conn``'s decoder holds; the connections to drop, and why."""
    budget.hold(conn, conn.decoder.held)
    victims = []
    while budget.over():
        victim = budget.biggest()
        assert victim is not None
        reason = (
            f"the receive budget ({_mib(budget.limit)} for all connections) is spent, "
            f"and its unfinished message holds the most ({_mib(budget.held(victim))})"
        )
        budget.release(victim)
        victims.append((victim, reason))
    return victims


def _mib(nbytes: int) -> str:
    return f"{nbytes / (1024 * 1024):.1f} MiB"
