"""whisper: a peer-to-peer chat daemon for the whispernet (whispering-gophers) protocol.

The sans-IO layers (the codec, messages, the engine) import no trio; ``Node``, the trio
shell, is imported on first use, so that ``import whisper.engine`` stays free of it.
"""

from typing import TYPE_CHECKING, Any

from .codec import Decoder, Violation, decode_all, encode, encode_object
from .config import Config
from .events import Delivered, Event, Notice
from .flood import FloodConfig
from .ids import IdCheck, check_id, hashed_id, random_id
from .message import InvalidMessage, Message, NotChat

if TYPE_CHECKING:
    from .node import Node


def __getattr__(name: str) -> Any:
    if name == "Node":
        from .node import Node

        return Node
    raise AttributeError(f"module 'whisper' has no attribute {name!r}")


__all__ = [
    "Config",
    "Decoder",
    "Delivered",
    "Event",
    "FloodConfig",
    "IdCheck",
    "InvalidMessage",
    "Message",
    "Node",
    "NotChat",
    "Notice",
    "Violation",
    "check_id",
    "decode_all",
    "encode",
    "encode_object",
    "hashed_id",
    "random_id",
]
