"""The start-up heap is left out of garbage collections; what comes after is collected."""

from __future__ import annotations

import gc
import weakref

from monitor.heap import freeze_startup_heap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_objects_made_after_the_freeze_are_still_collected():
    before = Node()
    try:
        frozen = freeze_startup_heap()
        assert frozen >= 1 and gc.get_freeze_count() == frozen
        assert not any(o is before for o in gc.get_objects())  # frozen: collections skip it
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle only the collector frees
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
