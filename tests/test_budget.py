"""Memory budgets shared by many holders (receive buffers), and water-filling (send queues)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper.budget import Budget, cut_level


def test_total_is_what_every_holder_holds_now():
    b: Budget[str] = Budget(100)
    b.hold("a", 30)
    b.hold("b", 50)
    b.hold("a", 10)  # what it holds now, not an addition
    assert b.total == 60 and b.held("a") == 10 and len(b) == 2
    b.release("b")
    b.release("b")  # idempotent: a dropped connection is released again when its task ends
    assert b.total == 10 and b.held("b") == 0 and len(b) == 1
    b.hold("a", 0)  # holding nothing is not holding
    assert b.total == 0 and len(b) == 0


def test_over_the_limit_the_biggest_holder_goes_not_the_newcomer():
    b: Budget[str] = Budget(100)
    b.hold("huge unfinished message", 90)
    assert not b.over()
    b.hold("newcomer", 20)
    assert b.over()
    assert b.biggest() == "huge unfinished message"
    b.release(b.biggest())
    assert not b.over()


def test_nobody_holding_nothing_is_biggest():
    assert Budget(1).biggest() is None
    with pytest.raises(ValueError):
        Budget(-1)


@pytest.mark.parametrize(
    ("sizes", "free", "level"),
    [
        ([10, 6, 2], 5, 5),  # 10 and 6 cut to 5: 6 bytes go; 2 is untouched
        ([10, 6, 2], 4, 6),  # cutting the biggest alone to 6 is enough
        ([10, 6, 2], 18, 0),  # everything
        ([10, 6, 2], 100, 0),  # more than there is: everything
        ([10, 6, 2], 0, 10),  # nothing to free: nobody is cut
        ([], 5, 0),
        ([8, 8, 8, 8], 4, 7),  # equal queues share the cut
    ],
)
def test_cut_level(sizes, free, level):
    assert cut_level(sizes, free) == level


@given(st.lists(st.integers(0, 10_000), max_size=30), st.integers(1, 100_000))
def test_cut_level_frees_enough_and_no_more_than_it_must(sizes, free):
    level = cut_level(sizes, free)

    def freed(at: int) -> int:
        return sum(max(0, s - at) for s in sizes)

    if freed(0) >= free:
        assert freed(level) >= free  # enough
        assert freed(level + 1) < free  # the highest such level: nobody lower is touched
    else:
        assert level == 0
