"""The conformance cases, one module per level (core has two).  Importing registers them."""

from . import backpressure, core, core_survival, hashed_id, limits, timestamp

__all__ = ["backpressure", "core", "core_survival", "hashed_id", "limits", "timestamp"]
