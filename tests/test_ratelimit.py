"""Token buckets, on an injected clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper.ratelimit import TokenBucket


def test_starts_full_and_allows_a_burst_then_refuses():
    bucket = TokenBucket(rate=2, burst=5, now=0)
    assert [bucket.take(0) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.level(0) < 1


def test_refills_at_the_rate_and_never_above_the_burst():
    bucket = TokenBucket(rate=2, burst=5, now=0)
    for _ in range(5):
        bucket.take(0)
    assert not bucket.take(0.4)  # 0.8 tokens
    assert bucket.take(0.5)  # 1.0
    assert not bucket.take(0.5)
    assert bucket.level(100) == 5
    assert bucket.full(100)
    assert sum(bucket.take(100) for _ in range(10)) == 5


def test_a_refused_take_costs_nothing_later():
    bucket = TokenBucket(rate=1, burst=1, now=0)
    assert bucket.take(0)
    for _ in range(1000):
        assert not bucket.take(0.5)
    assert bucket.take(1.0)  # no debt from the thousand refusals


def test_a_clock_going_backwards_adds_nothing():
    bucket = TokenBucket(rate=10, burst=3, now=10)
    for _ in range(3):
        bucket.take(10)
    assert not bucket.take(5)
    assert bucket.level(5) == 0
    assert bucket.take(10.2)


def test_wait_says_when_the_next_token_comes():
    bucket = TokenBucket(rate=4, burst=1, now=0)
    assert bucket.wait(0) == 0
    bucket.take(0)
    assert bucket.wait(0) == pytest.approx(0.25)
    assert TokenBucket(rate=0, burst=0, now=0).wait(0) == float("inf")


def test_negative_parameters_are_refused():
    with pytest.raises(ValueError):
        TokenBucket(rate=-1, burst=1, now=0)


@given(
    rate=st.floats(0.1, 100),
    burst=st.integers(1, 100),
    steps=st.lists(st.floats(0, 5), max_size=50),
)
def test_never_more_than_burst_plus_rate_times_elapsed(rate, burst, steps):
    bucket = TokenBucket(rate, burst, now=0)
    now = taken = 0.0
    for step in steps:
        now += step
        while bucket.take(now):
            taken += 1
        assert taken <= burst + rate * now + 1e-6
