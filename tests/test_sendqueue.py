"""Send queues: one per link, bounded each, and all together by one send budget."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from whisper.sendqueue import FULL, OVER_BUDGET, SendBudget, SendQueue, Shared

KB = 1000


def queues(n: int, limit: int, **kw) -> tuple[SendBudget, list[SendQueue]]:
    budget = SendBudget(limit)
    return budget, [SendQueue(budget=budget, **kw) for _ in range(n)]


def test_a_message_every_queue_holds_counts_once():
    """The node encodes a message once and every link queues the same bytes: 100 queues
    holding one 1 MB file hold 1 MB, not 100."""
    budget, qs = queues(100, limit=2_000 * KB)
    shared = Shared(b"f" * 1_000 * KB)
    assert all(q.put(shared) for q in qs)
    assert budget.total == 1_000 * KB
    for q in qs[:99]:
        assert q.take() is shared.data  # not a copy
    assert budget.total == 1_000 * KB  # the last queue still holds it
    qs[99].clear()
    assert budget.total == 0


def test_over_budget_the_longest_queue_loses_its_newest_and_a_short_one_nothing():
    budget, (slow, fast) = queues(2, limit=100 * KB)
    for i in range(9):
        assert slow.put(Shared(bytes([i]) * 10 * KB), now=1.0)
    assert fast.put(Shared(b"f" * 5 * KB))
    assert budget.total == 95 * KB
    assert fast.put(Shared(b"g" * 10 * KB), now=2.0)  # the peer that keeps up still gets it
    assert budget.total <= 100 * KB - 100 * KB // 8  # an eighth freed at once
    assert fast.nbytes == 15 * KB and fast.dropped == 0 and fast.overflowing_since is None
    assert slow.dropped > 0 and slow.overflow == OVER_BUDGET and slow.overflowing_since == 2.0
    batch = slow.take()
    assert batch.startswith(bytes([0]) * 10 * KB)  # the oldest kept, the newest dropped


def test_a_message_cut_at_once_is_reported_dropped():
    budget, (slow,) = queues(1, limit=50 * KB)
    for _ in range(4):
        assert slow.put(Shared(b"x" * 10 * KB))
    assert not slow.put(Shared(b"y" * 20 * KB), now=3.0)  # it alone holds the most: its loss
    assert budget.total <= 50 * KB and slow.overflows == 1


def test_what_a_link_took_no_longer_counts():
    budget, (q,) = queues(1, limit=100 * KB, batch_bytes=30 * KB)
    for _ in range(5):
        q.put(Shared(b"x" * 10 * KB))
    assert len(q.take()) == 30 * KB
    assert budget.total == q.nbytes == 20 * KB


def test_shared_messages_in_many_slow_queues_are_cut_in_one_go():
    """Slow peers that all hold the same messages: cutting frees bytes only once all of them
    drop a message, so the cut scales by how much they share."""
    budget, qs = queues(50, limit=100 * KB)
    messages = [Shared(bytes([i]) * KB) for i in range(120)]
    for m in messages:
        for q in qs:
            q.put(m)
    assert budget.total <= 100 * KB
    sizes = [q.nbytes for q in qs]
    assert max(sizes) - min(sizes) <= KB  # cut evenly (the last message is on some only)
    assert min(sizes) >= 100 * KB - 100 * KB // 8 - KB  # and no more than the eighth


def test_each_overflow_episode_is_counted_once_with_its_reason():
    q = SendQueue(max_bytes=20 * KB)
    assert q.put(b"x" * 20 * KB)
    assert not q.put(b"y", now=5.0) and not q.put(b"z", now=6.0)
    assert q.overflows == 1 and q.overflow == FULL and q.overflowing_since == 5.0
    assert q.dropped == 2
    q.take()
    assert q.overflowing_since is None
    assert q.put(b"x" * 20 * KB) and not q.put(b"y", now=9.0)
    assert q.overflows == 2


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["put", "take", "clear"]),
            st.integers(0, 5),  # which queue
            st.integers(0, 7),  # which message
        ),
        max_size=120,
    )
)
def test_the_budget_is_every_distinct_queued_message_and_never_over(ops):
    budget, qs = queues(6, limit=40 * KB, max_bytes=30 * KB, batch_bytes=8 * KB)
    messages = [Shared(bytes([i]) * (i + 1) * KB) for i in range(8)]
    for op, which, m in ops:
        q = qs[which]
        if op == "put":
            if messages[m] not in q._items:  # the node never queues a message twice on a link
                q.put(messages[m])
        elif op == "take":
            q.take()
        else:
            q.clear()
        held = {id(item): len(item.data) for q in qs for item in q._items}
        assert budget.total == sum(held.values()) <= budget.limit
        assert all(q.nbytes == sum(len(i.data) for i in q._items) for q in qs)
    for q in qs:
        q.close()
    assert budget.total == 0 and not budget._queues
