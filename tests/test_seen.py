"""Seen cache and freshness window, with an injected clock."""

from __future__ import annotations

import pytest

from whisper.freshness import check_fresh
from whisper.seen import SeenCache


def test_add_and_duplicate():
    cache = SeenCache(ttl=10)
    assert cache.add("a", 0.0)
    assert not cache.add("a", 1.0)
    assert "a" in cache and "b" not in cache
    assert len(cache) == 1


def test_remembered_at_least_ttl_and_at_most_ttl_plus_a_bucket():
    cache = SeenCache(ttl=16, buckets=16)  # bucket width 1 s
    cache.add("old", 0.0)
    for t in range(1, 17):
        cache.add(f"filler{t}", float(t))  # time passes, new buckets open
        assert "old" in cache, t
    cache.add("later", 17.0)
    assert "old" not in cache
    assert "filler16" in cache


def test_lone_bucket_expires():
    cache = SeenCache(ttl=16, buckets=16)
    cache.add("a", 0.0)
    cache.expire(16.5)
    assert "a" in cache
    cache.expire(17.0)
    assert "a" not in cache and len(cache) == 0


def test_memory_is_bounded_and_span_shrinks():
    cache = SeenCache(ttl=100, max_entries=1000, buckets=10)
    assert cache.span(0.0) == 100
    for i in range(5000):
        cache.add(str(i), i / 100)  # 50 s of traffic, 100 msgs/s
    assert len(cache) <= 1000
    assert str(4999) in cache
    span = cache.span(50.0)
    assert 0 < span < 100
    # Every ID younger than the reported span is still remembered.
    first_kept = int((50.0 - span) * 100) + 1
    assert all(str(i) in cache for i in range(first_kept, 5000))


def test_single_burst_over_cap_still_bounded():
    cache = SeenCache(ttl=100, max_entries=100)
    for i in range(1000):
        cache.add(str(i), 0.0)
    assert len(cache) <= 100
    assert cache.span(0.0) == 0.0


def test_reaching_the_cap_forgets_a_bucket_not_everything():
    # Regression: 500,001 IDs inside one time bucket used to wipe the whole cache.
    cache = SeenCache(ttl=600, max_entries=1600, buckets=16)
    for i in range(1601):
        cache.add(str(i), i / 1000)  # all within 2 s, far less than one 37.5 s bucket
    assert 1500 <= len(cache) <= 1600
    assert all(str(i) in cache for i in range(101, 1601))
    assert 0 < cache.span(1.6) < 600


def test_rejects_bad_parameters():
    with pytest.raises(ValueError):
        SeenCache(ttl=0)


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("timestamp_ms", "ok"),
    [
        (None, True),
        (int(NOW * 1000), True),
        (int((NOW - 530) * 1000), True),  # 8m50s old: inside ttl - skew = 540
        (int((NOW - 545) * 1000), False),
        (int((NOW + 55) * 1000), True),
        (int((NOW + 65) * 1000), False),
        (1000, False),  # 1970
    ],
)
def test_freshness_window(timestamp_ms, ok):
    reason = check_fresh(timestamp_ms, now=NOW, memory=600, skew=60)
    assert (reason is None) is ok, reason


def test_window_shrinks_with_memory():
    ts = int((NOW - 100) * 1000)
    assert check_fresh(ts, now=NOW, memory=600, skew=60) is None
    assert "old" in str(check_fresh(ts, now=NOW, memory=120, skew=60))


def test_window_keeps_half_the_memory_when_the_cache_was_flooded():
    # 40 s of memory: a message 15 s old is still accepted (it used to be a blackout).
    assert check_fresh(int((NOW - 15) * 1000), now=NOW, memory=40, skew=60) is None
    assert "old" in str(check_fresh(int((NOW - 25) * 1000), now=NOW, memory=40, skew=60))


def test_a_window_our_own_load_shrank_is_not_the_senders_fault():
    """A flood made the cache forget early (20 s of memory): honest messages 15 s old were
    dropped *and counted against the connection that carried them*."""
    old = int((NOW - 15) * 1000)
    stale = check_fresh(old, now=NOW, memory=20, skew=60, ttl=600)
    assert stale is not None and not stale.penalise  # dropped: we may have forgotten it ...
    assert "remembers only 20s" in str(stale)  # ... but it is inside the configured window
    # Outside the configured window (540 s) or in the future, the sender is at fault.
    for ts in (int((NOW - 545) * 1000), int((NOW + 65) * 1000), 1000):
        stale = check_fresh(ts, now=NOW, memory=20, skew=60, ttl=600)
        assert stale is not None and stale.penalise, stale
    # Without a ttl every drop is the sender's (callers that do not forget early).
    stale = check_fresh(old, now=NOW, memory=20, skew=60)
    assert stale is not None and stale.penalise
