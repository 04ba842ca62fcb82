"""heap.py: the start-up heap is frozen once, and what is made later is still collected."""

import gc
import re
import weakref

import pytest
import trio

from whisper import heap

from .proc import Whisper


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(heap, "FROZEN", False)
    yield
    gc.unfreeze()  # give the test process its heap back


def test_freezes_what_exists_then_once(fresh):
    before = Node()
    count = heap.freeze_startup()
    assert count == gc.get_freeze_count() > 0
    assert gc.is_tracked(before) and not any(o is before for o in gc.get_objects())  # frozen
    assert heap.freeze_startup() == 0  # once per process
    assert gc.get_freeze_count() == count


def test_what_is_made_later_is_still_collected(fresh):
    heap.freeze_startup()
    later = Node()
    gone = weakref.ref(later)
    del later
    gc.collect()
    assert gone() is None


def test_startup_garbage_is_collected_not_frozen(fresh):
    garbage = Node()
    gone = weakref.ref(garbage)
    del garbage
    heap.freeze_startup()
    assert gone() is None


async def test_a_headless_peer_with_http_freezes_before_it_listens(nursery):
    args = ["-v", "-host", "127.0.0.1", "-port", "0", "-headless", "-no-discovery"]
    w = await Whisper(*args, "-no-history", "-http", "127.0.0.1:0").start(nursery)
    with trio.fail_after(30):
        await w.wait_line("stderr", r"^web: http://")
    frozen = [i for i, text in enumerate(w.stderr) if "start-up heap frozen" in text]
    assert len(frozen) == 1, w.stderr
    assert int(re.search(r"frozen: (\d+)", w.stderr[frozen[0]]).group(1)) > 10_000  # the web's too
    listening = next(i for i, text in enumerate(w.stderr) if text.startswith("listening on"))
    assert frozen[0] < listening  # its pause delays nothing a peer sees
