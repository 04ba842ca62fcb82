"""The conformance cases, one module per level (core and routing have two).

Importing registers them.
"""

from . import (
    backlog,
    backpressure,
    core,
    core_survival,
    discovery,
    files,
    flood,
    hashed_id,
    hello,
    identity,
    limits,
    routing,
    timestamp,
    twoway,
)

__all__ = [
    "backlog",
    "backpressure",
    "core",
    "core_survival",
    "discovery",
    "files",
    "flood",
    "hashed_id",
    "hello",
    "identity",
    "limits",
    "routing",
    "timestamp",
    "twoway",
]
