"""One incoming connection as the engine sees it: the handle its shell task passes back.

Rules:
- Created by ``Engine.open_incoming`` for a connection the peer table and flood control let
  in; the shell feeds its bytes to ``Engine.receive_data`` and tells ``closed_incoming``.
- It owns the connection's decoder (``codec.py``), its flood-control state (``flood.py``)
  and the count of invalid messages it sent (the first ``LOGGED_PER_CONNECTION`` logged).
- ``closed`` is set, with the reason, once the engine has decided to drop it; from then on
  whatever else arrives on it is discarded, and the shell stops reading.
- ``greeting``: bytes the shell writes once when the connection is accepted
  (``Engine.greeting``, empty today: a capability banner plugs in there).
"""

from __future__ import annotations

from ..codec import Decoder
from ..flood import Connection as FloodConnection

LOGGED_PER_CONNECTION = 10


class Incoming:
    __slots__ = ("closed", "decoder", "flood", "greeting", "invalid", "remote")

    def __init__(self, remote: str, decoder: Decoder, flood: FloodConnection | None) -> None:
        self.remote = remote
        self.decoder = decoder
        self.flood = flood
        self.invalid = 0
        self.closed: str | None = None
        self.greeting = b""

    def __repr__(self) -> str:
        return f"<Incoming {self.remote}{' closed' if self.closed else ''}>"
