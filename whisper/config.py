"""A node's configuration: who we are and where we listen, then one small config per concern.

Rules:
- Each group is defined, with its defaults, beside the code it governs: ``codec.Limits``,
  ``seen.SeenConfig``, ``peers.ConnectionConfig``, ``discovery_policy.DiscoveryConfig``,
  ``backlog.BacklogConfig``, ``files.FilesConfig``, ``flood.FloodConfig``,
  ``routing.overlay.OverlayConfig``.  An extension
  adds its own group here.
- A group that is an optional feature is None when it is off (``discovery``, ``flood``,
  ``routing``);
  the command line (``cli.py``) turns flood control and identities on, a ``Config()`` leaves it off.
- Pure data: no trio, no I/O.  ``wall_clock`` is injected so that tests can set the date.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .backlog import BacklogConfig
from .codec import Limits
from .discovery_policy import DiscoveryConfig
from .files import FilesConfig
from .flood import FloodConfig
from .identity.stages import IdentityConfig
from .peers import ConnectionConfig
from .routing.overlay import OverlayConfig
from .seen import SeenConfig


@dataclass
class Config:
    host: str = "127.0.0.1"  # address to bind; "0.0.0.0" binds all and advertises outward IP
    port: int = 55555
    nick: str = ""
    peers: list[str] = field(default_factory=list)  # dialled at start (-peer)
    listen: bool = True  # False (-no-listen): nobody can dial us; ask for two-way links
    advertise: str | None = None  # IP to put in Addr (default: host, or outward IP)
    hashed_ids: bool = True
    limits: Limits = field(default_factory=Limits)
    seen: SeenConfig = field(default_factory=SeenConfig)
    connections: ConnectionConfig = field(default_factory=ConnectionConfig)
    discovery: DiscoveryConfig | None = field(default_factory=DiscoveryConfig)
    backlog: BacklogConfig = field(default_factory=BacklogConfig)
    files: FilesConfig = field(default_factory=FilesConfig)
    flood: FloodConfig | None = None
    identity: IdentityConfig | None = None  # extension 13: signing, DMs, channels
    routing: OverlayConfig | None = None  # extension 14: the overlay (None: flood, §5.1)
    wall_clock: Callable[[], float] = time.time
