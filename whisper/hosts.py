"""Which host a remote address is, and which hosts flood control treats alike.

Rules (PROTOCOL.md §7.4; used by ``flood.py``):
- ``host_of`` is the IP of an ``IP:PORT`` (``[v6]:PORT`` too); a string with no port is
  its own host.
- A spare is kept per IP, and per /64 for any IPv6 address but loopback (``host_key``):
  one machine holds a whole /64.
- A *shared* host is loopback or our own IP (``shared_host``): many peers may sit behind
  it, so it is never refused nor its addresses blocked as a whole.
"""

from __future__ import annotations

import ipaddress

from .addr import AddressError, parse_hostport


def host_key(host: str) -> str:
    """What a spare is kept by: the IP, or its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if ip.version == 6 and not ip.is_loopback:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return host


def host_of(remote: str) -> str:
    """The IP of an ``IP:PORT`` (``[v6]:PORT`` too); the string itself if it has no port."""
    try:
        return parse_hostport(remote)[0]
    except AddressError:
        return remote


def shared_host(host: str, here: str = "") -> bool:
    """True for an IP that many peers may share: loopback, or our own."""
    if here and host == host_of(here):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
