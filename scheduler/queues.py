"""Lazy-deletion min-heap: O(log n) push, re-key and remove without searching the heap.

Why: the waiting queue needs add, cancel and re-prioritise in O(log n). Python's heapq has no
decrease-key, so a re-keyed or removed item's old entry is marked dead and skipped when it reaches
the top; the heap is rebuilt when dead entries outnumber live ones, which keeps pops amortised O(log n)
and memory O(live).

Entries are flat tuples `(*key, tag, item)` where `tag` is a one-element list `[item_id]`, emptied when the
entry dies. Flat tuples because heap comparisons dominate at 100 k queued requests: a flat tuple is compared
in one pass, where a `[key, item, alive]` list compared its key tuple twice (equality, then order) and cost
about twice as much per pop. The tag keeps liveness checks free of hashing the item id. Keys end in a unique
sequence number, so comparisons never reach the tag or the item unless both entries carry the same key,
i.e. the same item re-pushed with an unchanged key (then a dead entry's empty tag sorts first).
"""
from __future__ import annotations

from heapq import heapify, heappop, heappush


class LazyHeap:
    """Min-heap of items keyed by unique tuples (the last element must be a unique sequence number)."""

    __slots__ = ("_heap", "_live")

    def __init__(self) -> None:
        self._heap: list[tuple] = []
        self._live: dict = {}  # item_id -> its live entry (*key, [item_id], item)

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, item_id) -> bool:
        return item_id in self._live

    def push(self, item_id, key: tuple, item) -> None:
        """Insert or re-key item_id."""
        live = self._live
        old = live.get(item_id)
        if old is not None:
            old[-2].clear()  # mark dead
        entry = (*key, [item_id], item)
        live[item_id] = entry
        heap = self._heap
        heappush(heap, entry)
        if len(heap) > 2 * len(live) + 64:
            self._compact()

    def remove(self, item_id):
        """Remove item_id; returns the item or None."""
        entry = self._live.pop(item_id, None)
        if entry is None:
            return None
        entry[-2].clear()
        return entry[-1]

    def _top(self):
        """The live minimum entry (dead entries above it are discarded), or None."""
        heap = self._heap
        while heap and not heap[0][-2]:
            heappop(heap)
        return heap[0] if heap else None

    def peek(self):
        entry = self._top()
        return None if entry is None else entry[-1]

    def peek_key(self):
        entry = self._top()
        return None if entry is None else entry[:-2]

    def pop(self):
        """Pop the minimum live item."""
        heap = self._heap
        while heap:
            entry = heappop(heap)
            tag = entry[-2]
            if tag:
                del self._live[tag[0]]
                return entry[-1]
        return None

    def ordered_items(self) -> list:
        """All live items in key order (O(n log n); for dashboards, not the hot path)."""
        return [e[-1] for e in sorted(self._live.values())]

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if e[-2]]
        heapify(self._heap)
