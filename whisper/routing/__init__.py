"""Scalable routing (extension 14): HyParView membership and Plumtree broadcast, sans-IO.

Specified in PROTOCOL.md §7.8 and §7.9; the engine hosts ``Overlay`` as its router
(``engine/overlay_router.py``, ``-routing overlay``, the default).  Modules: ``wire.py``
(control payloads), ``actions.py``, ``hyparview.py``, ``plumtree.py``, ``overlay.py`` (the
two together), ``sim.py`` (a discrete-event network of them, and of today's full flood, for
tests and ``bench/``).
"""

from .actions import Action, Connect, Deliver, Disconnect, Push, Send
from .hyparview import HyParView, HyParViewConfig
from .overlay import Overlay
from .plumtree import Plumtree, PlumtreeConfig

__all__ = [
    "Action",
    "Connect",
    "Deliver",
    "Disconnect",
    "HyParView",
    "HyParViewConfig",
    "Overlay",
    "Plumtree",
    "PlumtreeConfig",
    "Push",
    "Send",
]
