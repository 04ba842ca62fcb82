"""whisper: a peer-to-peer chat daemon for the whispernet (whispering-gophers) protocol."""

from .codec import Decoder, Violation, decode_all, encode, encode_object
from .events import Delivered, Event, Notice
from .flood import FloodConfig
from .ids import IdCheck, check_id, hashed_id, random_id
from .message import InvalidMessage, Message, NotChat
from .node import Config, Node

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
