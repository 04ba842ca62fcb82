"""The relay engine: the whispernet pipeline as sans-IO state, and where extensions plug in.

Nothing here imports trio or touches a socket or a clock: the engine is fed what happened
(bytes or objects received on a connection at time T, a link up or down, a line typed) and
returns what to do (``actions.py``: deliver these events, wake these links, dial this
address, close that connection because ...).  ``node.py`` is the trio shell that carries
the actions out, as ``discovery.py`` is for ``discovery_policy.py``; ``simnet.py`` runs
many engines in one process, without sockets, for tests and simulations.

The pipeline (``relay.py``), for each object of a received chunk, and where each extension
point (``stages.py``) plugs in::

    decode (codec.py, the connection's Decoder)       Violation -> drop the connection
    interpret (message.py)                            no Body   -> [Control] or ignored
    seen? (seen.py)                                   duplicate -> dropped quietly
    ID hash (ids.py), freshness (freshness.py),
      [Check] (signatures)                            reason    -> invalid: penalty
    flood admit (flood.py, when on)                   over      -> dropped (or cut)
    mark seen, encode once
    event -> [View] (files.py; channel filter,
      decryption) -> Deliver to front ends            relaying is not affected
  then for the batch (up to a message whose Addr is new, and again after it):
    [Keeper] (backlog.py; a history store)            every new message, ours too
    [Router] (FloodRouter: every link but the
      author's; OverlayRouter, overlay_router.py:
      the tree, IHAVE, legacy links) -> each link's queue, one entry
    dial the new Addr (links.py; connmgr.py may make a quiet link give way)

A shell that verifies signatures off the event loop feeds a chunk in two steps, ``decode``
then ``receive_items``, with the ``Check`` stage's batch done in between (``verifier.py``).

Capabilities: each link's ``Peer.caps`` is what its peer announced (``link_connected``); a
payload routed with ``Engine.send(data, now, needs=...)`` goes only to links that have it
(the Go peer crashes on a payload without ``Body``), and ``Engine.greeting`` is written
first on every accepted connection.  Our own messages (``say``) enter at "mark seen", after the
[Signer] stages (signatures).

Modules: ``relay.py`` (the ``Engine``), ``links.py`` (outgoing links' lifecycle),
``incoming.py`` (an incoming connection's handle), ``stages.py`` (extension points and the
built-in stages), ``overlay_router.py`` (extension 14), ``actions.py``, ``snapshots.py``
(what front ends may ask), ``simnet.py``.
"""

from .actions import Action, CloseIncoming, CloseLink, Deliver, Dial, Flush, Retry, Save
from .incoming import Incoming
from .relay import Engine
from .snapshots import BlacklistEntry, PeerInfo, Stats
from .stages import Batch, Check, Control, FloodRouter, Keeper, Relay, Router, Signer, View

__all__ = [
    "Action",
    "Batch",
    "BlacklistEntry",
    "Check",
    "CloseIncoming",
    "CloseLink",
    "Control",
    "Deliver",
    "Dial",
    "Engine",
    "FloodRouter",
    "Flush",
    "Incoming",
    "Keeper",
    "PeerInfo",
    "Relay",
    "Retry",
    "Router",
    "Save",
    "Signer",
    "Stats",
    "View",
]
