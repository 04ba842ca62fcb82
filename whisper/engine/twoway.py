"""Two-way links, for a peer nobody can dial (behind NAT: ``-no-listen``), PROTOCOL.md §7.12.
Pure.

Rules:
- The capability is ``twoway``: every whisper banner names it (``hello.SPEAKS``): the
  listener is willing to write back on a connection it accepted.
- A peer that cannot be dialled (``Config.listen`` False, or found out: ``FindOut``) adds
  ``"Reverse": true`` to its hello on a link whose banner named ``twoway``
  (``hello.Hello.linked``; ``Peer.asked_reverse``), and from then on reads what the listener
  writes after the banner as a whispernet stream (the shell: ``link.py``,
  ``Node.link_reverse``), as it would read a connection it accepted.
- Found out: a peer that listens, has had a link up for ``FIND_OUT`` seconds and has never
  accepted a connection takes itself for undialled (every whisper peer dials back on a
  hello at once): from then on it asks, with a new hello on each link already up whose
  banner named ``twoway``, and in the hello of every new one.
- The listener, on such a hello (the first of its connection, ``Addr`` a dialable address
  that is not its own), ``adopt``s the connection as its link to that ``Addr``: a link whose
  transport is the accepted connection (``Peer.reverse``; a ``Reverse`` action tells the
  shell), replayed and queued as any link, its peer's capabilities those the hello named.
  A link it had to that ``Addr`` is replaced.  The link is never redialled: when the
  connection ends, so does the link.
- Between peers of which one does not speak it (the Go peer, older whisper) nothing changes:
  no ``Reverse`` is sent to a listener whose banner lacks ``twoway``, and a listener that
  does not speak it ignores the key (connections stay one-way).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..peers import State
from .actions import Reverse, Tick

if TYPE_CHECKING:
    from .incoming import Incoming
    from .relay import Engine

TWOWAY = "twoway"
KEY = "Reverse"
#: Seconds with a link up and no connection accepted after which we take ourselves for a
#: peer nobody can dial.
FIND_OUT = 10.0
INFINITY = float("inf")

log = logging.getLogger("whisper.engine")


class FindOut:
    """Whether we ask for two-way links: ``-no-listen``, or found out (see the rules)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.undialled = not engine.config.listen
        self.accepted = False
        self.at = INFINITY  # when to decide

    def link_up(self, now: float) -> None:
        if not (self.undialled or self.accepted) and self.at == INFINITY:
            self.at = now + FIND_OUT
            self.engine.out.actions.append(Tick(self.at))

    def incoming(self) -> None:
        self.accepted, self.at = True, INFINITY

    def tick(self, now: float) -> float:
        if now < self.at:
            return self.at
        self.at = INFINITY
        engine = self.engine
        self.undialled = True
        asked = 0
        for link in engine.table.outgoing.values():
            if link.state is State.CONNECTED and TWOWAY in link.caps and not link.asked_reverse:
                engine.links.put_control(link, engine.hello.hello(link), now)
                asked += 1
        if asked:
            log.warning(
                "no peer has connected to us in %.0fs: asked %d we dialled to send to us on "
                "our connections (two-way links)",
                FIND_OUT,
                asked,
            )
        return self.at


def wants(obj: dict) -> bool:
    """Whether a hello asks for its connection to be made two-way."""
    return obj.get(KEY) is True


def adopt(engine: Engine, addr: str, conn: Incoming, now: float) -> bool:
    """Make ``conn`` (its hello asked, under ``addr``) the link to ``addr``; False if the
    table refuses one (the connection then stays one-way)."""
    links, table = engine.links, engine.table
    if conn.reverse is not None or conn.closed is not None:
        return False
    old = table.outgoing.get(addr)
    if old is not None:
        links.close(addr, "replaced by the connection it opened to us (two-way)")
    if not links.dial(addr, now, by_user=False, spoke=True, reverse=True):
        return False
    link = table.outgoing[addr]
    conn.reverse = link
    engine.out.actions.append(Reverse(link, conn))
    links.connected(link, now, conn.caps)
    engine._speaks(link, now)
    engine.out.woken[addr] = link
    return True
