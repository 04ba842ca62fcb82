"""Routing control payloads: their formats, and how a received object is recognised as one.

Rules (PROTOCOL.md §7.8 and §7.9 are normative):

- A control payload is a JSON object without ``Body`` (so peers that do not speak the
  extension ignore it, PROTOCOL.md §2.2) with a string ``Ctl`` naming its kind, and ``Addr``,
  the canonical listening address of the peer that wrote it.  It travels one hop: it is never
  relayed as it is, nor shown.  It is sent only to peers that said they speak the extension
  (the Go reference peer crashes on a payload without ``Body``).
- ``decode(obj)`` returns the control, ``None`` for an object that is not a routing control
  (it has a ``Body``, no ``Ctl``, or a ``Ctl`` of another extension), or ``Invalid(reason)``
  for a routing control that breaks a rule here.  It never raises, whatever the object holds.
- Strict and bounded: every key has one type; integers are not booleans; an address is an
  IP-literal ``IP:PORT`` (``addr.dialable``), kept in its canonical spelling; a list of
  addresses holds at most ``MAX_PEERS``, a list of message IDs at most ``MAX_IDS`` non-empty
  strings of at most ``MAX_ID_LENGTH`` characters; a TTL is 0..``MAX_TTL``.  A message whose
  ID is longer is never announced, only pushed (``plumtree.py``).  A prune's ``Root`` is
  a message's ``Addr`` as written, 1..``MAX_ADDR_LENGTH`` characters: it names a tree, it
  is never dialled; a message whose ``Addr`` is longer is routed by the default tree.
- Unknown keys are ignored, so that later versions can add some.
- ``encode(control)`` gives the bytes to write (compact JSON and a newline, as ``codec.py``
  writes every payload); ``decode(json.loads(encode(c))) == c`` for every valid control.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..addr import dialable
from ..codec import encode_object

MAX_PEERS = 16
MAX_IDS = 256
MAX_ID_LENGTH = 128
MAX_TTL = 16
MAX_ADDR_LENGTH = 64  # "[" 45-character IPv6 "]:" 5 digits, with room to spare


class Invalid(NamedTuple):
    """A routing control that breaks a rule: the reason, to log and count against the link."""

    reason: str


@dataclass(frozen=True, slots=True)
class Join:
    """A newcomer asks its contact to take it into the overlay (HyParView JOIN)."""

    sender: str


@dataclass(frozen=True, slots=True)
class ForwardJoin:
    """The walk that introduces ``peer`` (a newcomer) to the overlay (HyParView FORWARDJOIN)."""

    sender: str
    peer: str
    ttl: int


@dataclass(frozen=True, slots=True)
class Neighbor:
    """Asks to become a neighbour; a ``high`` request may not be refused (HyParView NEIGHBOR)."""

    sender: str
    high: bool


@dataclass(frozen=True, slots=True)
class Accept:
    """The sender has made the receiver its neighbour: the answer to a join or a request."""

    sender: str


@dataclass(frozen=True, slots=True)
class Reject:
    """The sender refuses a low-priority neighbour request (its active view is full)."""

    sender: str


@dataclass(frozen=True, slots=True)
class Disconnect:
    """The sender no longer counts the receiver as a neighbour (HyParView DISCONNECT)."""

    sender: str


@dataclass(frozen=True, slots=True)
class Shuffle:
    """``origin``'s sample of addresses, on a random walk of ``ttl`` more hops (SHUFFLE)."""

    sender: str
    origin: str
    ttl: int
    peers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ShuffleReply:
    """The end of a shuffle walk answers the origin with as many addresses (SHUFFLEREPLY)."""

    sender: str
    peers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IHave:
    """Plumtree's lazy push: the sender has these messages."""

    sender: str
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Graft:
    """Send me these messages, and push me everything from now on (Plumtree GRAFT)."""

    sender: str
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Prune:
    """Stop pushing me whole messages of ``root`` (None: of anyone), and with ``default``
    those routed by the default tree too: announce them instead (Plumtree PRUNE, per
    author)."""

    sender: str
    root: str | None = None
    default: bool = False


Control = (
    Join
    | ForwardJoin
    | Neighbor
    | Accept
    | Reject
    | Disconnect
    | Shuffle
    | ShuffleReply
    | IHave
    | Graft
    | Prune
)
MEMBERSHIP = (Join, ForwardJoin, Neighbor, Accept, Reject, Disconnect, Shuffle, ShuffleReply)
BROADCAST = (IHave, Graft, Prune)

_KIND: dict[type, str] = {
    Join: "join",
    ForwardJoin: "forwardjoin",
    Neighbor: "neighbor",
    Accept: "accept",
    Reject: "reject",
    Disconnect: "disconnect",
    Shuffle: "shuffle",
    ShuffleReply: "shufflereply",
    IHave: "ihave",
    Graft: "graft",
    Prune: "prune",
}


class _Bad(Exception):
    pass


def to_object(control: Control) -> dict[str, Any]:
    """The JSON object for ``control``, keys in a fixed order."""
    obj: dict[str, Any] = {"Ctl": _KIND[type(control)], "Addr": control.sender}
    match control:
        case ForwardJoin(peer=peer, ttl=ttl):
            obj["Peer"], obj["TTL"] = peer, ttl
        case Neighbor(high=high):
            obj["Prio"] = "high" if high else "low"
        case Shuffle(origin=origin, ttl=ttl, peers=peers):
            obj["Origin"], obj["TTL"], obj["Peers"] = origin, ttl, list(peers)
        case ShuffleReply(peers=peers):
            obj["Peers"] = list(peers)
        case IHave(ids=ids) | Graft(ids=ids):
            obj["IDs"] = list(ids)
        case Prune(root=root, default=default) if root is not None:
            obj["Root"] = root
            if default:
                obj["Default"] = True
    return obj


def encode(control: Control) -> bytes:
    return encode_object(to_object(control))


def decode(obj: Mapping[str, Any]) -> Control | Invalid | None:
    """The routing control ``obj`` holds; None if it is not one; ``Invalid`` if malformed."""
    if "Body" in obj:
        return None
    kind = obj.get("Ctl")
    if type(kind) is not str:
        return None
    build = _DECODERS.get(kind)
    if build is None:
        return None  # another extension's control
    try:
        return build(obj, _address(obj, "Addr"))
    except _Bad as bad:
        return Invalid(f"{kind}: {bad}")


def _address(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if type(value) is not str:
        raise _Bad(f"{key} must be an IP:PORT string")
    canonical = dialable(value) if len(value) <= MAX_ADDR_LENGTH else None
    if canonical is None:
        raise _Bad(f"{key} is not an IP:PORT we could dial")
    return canonical


def _root(obj: Mapping[str, Any]) -> str | None:
    """A prune's ``Root``: a message's ``Addr`` as written (never dialled), or absent."""
    if "Root" not in obj:
        return None
    value = obj["Root"]
    if type(value) is not str or not 0 < len(value) <= MAX_ADDR_LENGTH:
        raise _Bad(f"Root must be a string of 1-{MAX_ADDR_LENGTH} characters")
    return value


def _prune(obj: Mapping[str, Any], sender: str) -> Prune:
    root = _root(obj)
    default = obj.get("Default", False)
    if type(default) is not bool:
        raise _Bad("Default must be true or false")
    return Prune(sender, root, default and root is not None)


def root_of(addr: str | None) -> str | None:
    """The root a message of author ``addr`` is routed by (None: the default tree): one a
    ``prune`` can name."""
    return addr if addr and len(addr) <= MAX_ADDR_LENGTH else None


def _ttl(obj: Mapping[str, Any]) -> int:
    value = obj.get("TTL")
    if type(value) is not int or not 0 <= value <= MAX_TTL:
        raise _Bad(f"TTL must be an integer 0-{MAX_TTL}")
    return value


def _list(obj: Mapping[str, Any], key: str, most: int) -> list[Any]:
    value = obj.get(key)
    if type(value) is not list:
        raise _Bad(f"{key} must be a list")
    if len(value) > most:
        raise _Bad(f"{key} holds {len(value)} entries, more than {most}")
    return value


def _peers(obj: Mapping[str, Any]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for value in _list(obj, "Peers", MAX_PEERS):
        canonical = (
            dialable(value) if type(value) is str and len(value) <= MAX_ADDR_LENGTH else None
        )
        if canonical is None:
            raise _Bad("Peers must hold IP:PORT strings")
        found[canonical] = None
    return tuple(found)


def _ids(obj: Mapping[str, Any]) -> tuple[str, ...]:
    ids = _list(obj, "IDs", MAX_IDS)
    for value in ids:
        if type(value) is not str or not 0 < len(value) <= MAX_ID_LENGTH:
            raise _Bad(f"IDs must hold strings of 1-{MAX_ID_LENGTH} characters")
    return tuple(dict.fromkeys(ids))


def _neighbor(obj: Mapping[str, Any], sender: str) -> Neighbor:
    prio = obj.get("Prio")
    if type(prio) is not str or prio not in ("high", "low"):
        raise _Bad('Prio must be "high" or "low"')
    return Neighbor(sender, prio == "high")


_DECODERS: dict[str, Callable[[Mapping[str, Any], str], Control]] = {
    "join": lambda obj, sender: Join(sender),
    "forwardjoin": lambda obj, sender: ForwardJoin(sender, _address(obj, "Peer"), _ttl(obj)),
    "neighbor": _neighbor,
    "accept": lambda obj, sender: Accept(sender),
    "reject": lambda obj, sender: Reject(sender),
    "disconnect": lambda obj, sender: Disconnect(sender),
    "shuffle": lambda obj, sender: Shuffle(sender, _address(obj, "Origin"), _ttl(obj), _peers(obj)),
    "shufflereply": lambda obj, sender: ShuffleReply(sender, _peers(obj)),
    "ihave": lambda obj, sender: IHave(sender, _ids(obj)),
    "graft": lambda obj, sender: Graft(sender, _ids(obj)),
    "prune": _prune,
}
