"""Peer addresses: parsing ``HOST:PORT`` and finding the address we advertise.

Rules:
- ``HOST:PORT`` with a port in 1..65535 (0 is allowed only where we listen); an IPv6 host is
  written in brackets, ``[::1]:55555``.  ``check_host`` tells a HOST that could never be
  dialled (``a b``) from a name that does not resolve today.
- Addresses learned from messages are dialled only if the host is an IP literal (without an
  IPv6 ``%scope``): a peer's message never makes us resolve a name.  They are dialled, and
  links kept, under their canonical spelling (``dialable``), however the message spelt them.
  ``dialable`` is pure and asked for every message: its last answers are cached, bounded.
- The default advertised address is the machine's outward IPv4 address, as the Go reference
  peer does, found from the routing table without sending a packet; 127.0.0.1 if none.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket

_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


class AddressError(ValueError):
    pass


def parse_hostport(text: str, *, allow_port_zero: bool = False) -> tuple[str, int]:
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host or not port_text:
        raise AddressError(f"{text!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise AddressError(f"{text!r}: write an IPv6 host in brackets, [::1]:PORT")
    if not (port_text.isascii() and port_text.isdigit()):  # "²" isdigit() but int() refuses
        raise AddressError(f"{text!r}: port {port_text!r} is not a number")
    digits = port_text.lstrip("0")
    port = int(digits or "0") if len(digits) <= 5 else 65536  # int() refuses 4,301 digits
    if not (0 if allow_port_zero else 1) <= port <= 65535:
        raise AddressError(f"{text!r}: port must be 1-65535")
    return host, port


def check_host(host: str) -> None:
    """Raise ``AddressError`` unless ``host`` is an IP address or could be a host name
    (dot-separated labels of letters, digits, ``-`` and ``_``; an IDN name in any script)."""
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    try:
        name = host.encode("idna").decode("ascii").removesuffix(".")
    except UnicodeError:
        name = ""
    if not (0 < len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.split("."))):
        raise AddressError(f"{host!r} is not an IP address or a host name")


def format_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def dialable_ip(text: str) -> tuple[str, int] | None:
    """``(ip, port)`` if text is an IP-literal HOST:PORT we may dial, else None."""
    try:
        host, port = parse_hostport(text)
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.is_unspecified or ip.is_multicast or getattr(ip, "scope_id", None) is not None:
        return None  # a "%scope" names an interface of the sender's machine, not of ours
    return str(ip), port


def dialable(text: str) -> str | None:
    """The canonical ``IP:PORT`` of ``dialable_ip(text)``: one spelling per peer.  Asked
    for every message's ``Addr``, which is mostly one of a few: answers for addresses up
    to ``CACHED_LENGTH`` characters are remembered (the last ``CACHED_ADDRS``)."""
    if len(text) <= CACHED_LENGTH:
        return _dialable_cached(text)
    return _dialable(text)


def _dialable(text: str) -> str | None:
    found = dialable_ip(text)
    return None if found is None else format_hostport(*found)


CACHED_LENGTH = 64  # "[v6 address%scope]:port" fits; a longer Addr is not a peer's
CACHED_ADDRS = 4096
_dialable_cached = functools.lru_cache(maxsize=CACHED_ADDRS)(_dialable)


def outward_ipv4() -> str:
    """The source address the kernel would use for the default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: a UDP connect() only looks up a route
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"
