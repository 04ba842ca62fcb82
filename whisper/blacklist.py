"""The blacklist of flood control (PROTOCOL.md §7.4): who was cut off, until when.  Pure state.

Rules:
- An ``Entry`` names the host IP of a connection that flood control cut, the reason and the
  time it expires (``flood.py`` decides; never an ``Addr``: messages only claim one).
- ``Blacklist`` looks entries up by host and ``Addr``, replaces the entry of the same key,
  expires them lazily on the clock it is given, and lifts those of a host or ``Addr`` on
  request (``/unblock``).  Adding or expiring costs O(log n) (a heap of expiry times).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass


@dataclass(slots=True)
class Entry:
    """One blacklisting: the host of a connection that was cut."""

    host: str
    addr: str | None  # always None: an Addr is only claimed (kept for the Blacklist's index)
    since: float
    until: float
    reason: str

    def describe(self, now: float) -> str:
        who = self.addr or f"host {self.host}"
        via = f" (from {self.host})" if self.addr else ""
        return f"{who}{via}: {self.reason}; {max(0.0, self.until - now):.0f}s left"


_Key = tuple[str, str | None]  # (host, Addr): one entry each


class Blacklist:
    """Entries with an expiry; looked up by origin ``Addr`` and by host IP.

    Adding or expiring an entry costs O(log n): entries are indexed by key, ``Addr`` and host,
    and their expiry times kept in a heap (an entry replaced or lifted stays in the heap until
    it comes to the top, and the heap is rebuilt once it holds twice as many as are kept)."""

    def __init__(self) -> None:
        self._entries: dict[_Key, Entry] = {}  # in the order added
        self._addrs: dict[str, dict[_Key, Entry]] = {}  # the last one added counts
        self._hosts: dict[str, dict[_Key, Entry]] = {}
        self._expiry: list[tuple[float, int, _Key, Entry]] = []  # a heap
        self._added = 0
        self._next_expiry = float("inf")

    def add(self, entry: Entry) -> None:
        """Add an entry, replacing one for the same host and ``Addr``."""
        key = (entry.host, entry.addr)
        old = self._entries.get(key)
        if old is not None:
            self._drop(key, old)
        self._entries[key] = entry
        if entry.addr:
            self._addrs.setdefault(entry.addr, {})[key] = entry
        self._hosts.setdefault(entry.host, {})[key] = entry
        self._added += 1
        heapq.heappush(self._expiry, (entry.until, self._added, key, entry))
        if len(self._expiry) > 2 * len(self._entries) + 16:
            self._expiry = [(e.until, n, k, e) for n, (k, e) in enumerate(self._entries.items())]
            heapq.heapify(self._expiry)
        self._next_expiry = self._expiry[0][0]

    def addr(self, addr: str, now: float) -> Entry | None:
        if now >= self._next_expiry:
            self.expire(now)
        return self._latest(self._addrs.get(addr))

    def host(self, host: str, now: float) -> Entry | None:
        if now >= self._next_expiry:
            self.expire(now)
        return self._latest(self._hosts.get(host))

    def any_addr(self, now: float) -> bool:
        if now >= self._next_expiry:
            self.expire(now)
        return bool(self._addrs)

    def entries(self, now: float) -> list[Entry]:
        self.expire(now)
        return list(self._entries.values())

    def expire(self, now: float) -> None:
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            _, _, key, entry = heapq.heappop(expiry)
            if self._entries.get(key) is entry:  # else replaced or lifted already
                self._drop(key, entry)
        self._next_expiry = expiry[0][0] if expiry else float("inf")

    def remove(self, key: str) -> list[Entry]:
        """Lift every entry for ``key``: an ``Addr``, or a host IP (as ``/blacklist`` shows)."""
        gone = {**self._addrs.get(key, {}), **self._hosts.get(key, {})}
        for k, entry in gone.items():
            self._drop(k, entry)
        return list(gone.values())

    def _drop(self, key: _Key, entry: Entry) -> None:
        del self._entries[key]
        if entry.addr:
            self._unindex(self._addrs, entry.addr, key)
        self._unindex(self._hosts, entry.host, key)

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _latest(entries: dict[_Key, Entry] | None) -> Entry | None:
        return next(reversed(entries.values())) if entries else None

    @staticmethod
    def _unindex(index: dict[str, dict[_Key, Entry]], name: str, key: _Key) -> None:
        same = index[name]
        del same[key]
        if not same:
            del index[name]
