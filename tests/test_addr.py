"""Peer addresses (``whisper/addr.py``): the canonical spelling a message's ``Addr`` is dialled
under, and the cache that answers it for the few addresses every message names."""

from __future__ import annotations

import pytest

from whisper import addr
from whisper.addr import AddressError, dialable, dialable_ip, parse_hostport


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("127.0.0.1:55555", "127.0.0.1:55555"),
        ("127.000.0.1:55555", None),  # leading zeros: ipaddress refuses an ambiguous octet
        ("[::1]:7", "[::1]:7"),
        ("[0:0::1]:7", "[::1]:7"),
        ("10.0.0.5:055555", "10.0.0.5:55555"),
        ("0.0.0.0:1", None),  # unspecified
        ("224.0.0.1:1", None),  # multicast
        ("[fe80::1%eth0]:1", None),  # a scope names an interface of the sender's machine
        ("example.com:1", None),  # a name: a peer's message never makes us resolve one
        ("127.0.0.1:0", None),
        ("127.0.0.1", None),
        ("", None),
    ],
)
def test_dialable_gives_one_spelling_per_peer_or_none(text, canonical):
    assert dialable(text) == canonical


def test_dialable_remembers_short_addresses_and_not_long_ones():
    addr._dialable_cached.cache_clear()
    for _ in range(3):
        assert dialable("10.1.2.3:4") == "10.1.2.3:4"
    info = addr._dialable_cached.cache_info()
    assert (info.hits, info.misses) == (2, 1)
    long = "1" * (addr.CACHED_LENGTH + 1)
    assert dialable(long) is None
    assert addr._dialable_cached.cache_info().misses == 1  # not asked, not kept


def test_dialable_cache_is_bounded():
    addr._dialable_cached.cache_clear()
    for i in range(addr.CACHED_ADDRS + 100):
        dialable(f"10.0.{i // 256 % 256}.{i % 256}:{1 + i // 65536}")
    assert addr._dialable_cached.cache_info().currsize == addr.CACHED_ADDRS


def test_parse_hostport_refuses_what_is_not_host_port():
    assert parse_hostport("[::1]:1") == ("::1", 1)
    for bad in ("::1:1", "h:x", "h:²", "h:65536", ":1", "h:"):
        with pytest.raises(AddressError):
            parse_hostport(bad)
    assert dialable_ip("h:1") is None
