"""What the routing state machines ask their shell to do.

Rules:
- Plain immutable values; a state machine returns a list of them from every event method
  and never performs I/O itself.
- ``Send`` writes one control payload (``wire.py``) to a peer: on our link to it if we have
  one, else on a connection opened for it and closed after (HyParView's temporary
  connections, for a shuffle reply or a neighbour request to a passive peer).  If the peer
  cannot be reached the shell reports ``link_down(peer)``.
- ``Connect`` keeps a link to a peer until ``Disconnect``: the peer is a neighbour now.
- ``Push`` writes one whole chat message (the payload the router was given with its ID) to
  each of ``peers``, the same bytes to all.  ``Deliver`` hands a new message to the engine,
  once per ID.
"""

from __future__ import annotations

from dataclasses import dataclass

from .wire import Control


@dataclass(frozen=True, slots=True)
class Send:
    peer: str
    control: Control


@dataclass(frozen=True, slots=True)
class Connect:
    peer: str


@dataclass(frozen=True, slots=True)
class Disconnect:
    peer: str


@dataclass(frozen=True, slots=True)
class Push:
    peers: tuple[str, ...]
    msg_id: str
    payload: object


@dataclass(frozen=True, slots=True)
class Deliver:
    msg_id: str
    payload: object
    sender: str | None


Action = Send | Connect | Disconnect | Push | Deliver
