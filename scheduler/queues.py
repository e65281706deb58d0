"""Lazy-deletion min-heap: O(log n) push, re-key and remove without searching the heap.

Why: the waiting queue needs add, cancel and re-prioritise in O(log n). Python's heapq has no
decrease-key, so a re-keyed or removed item's old entry is marked dead and skipped when it reaches
the top; the heap is rebuilt when dead entries outnumber live ones, which keeps pops amortised O(log n)
and memory O(live).
"""
from __future__ import annotations

import heapq


class LazyHeap:
    """Min-heap of items keyed by unique tuples (the last element must be a unique sequence number)."""

    __slots__ = ("_heap", "_live")

    def __init__(self) -> None:
        self._heap: list[list] = []
        self._live: dict = {}  # item_id -> entry [key, item, alive]

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, item_id) -> bool:
        return item_id in self._live

    def push(self, item_id, key: tuple, item) -> None:
        """Insert or re-key item_id."""
        old = self._live.get(item_id)
        if old is not None:
            old[2] = False
        entry = [key, item, True]
        self._live[item_id] = entry
        heapq.heappush(self._heap, entry)
        if len(self._heap) > 2 * len(self._live) + 64:
            self._compact()

    def remove(self, item_id):
        """Remove item_id; returns the item or None."""
        entry = self._live.pop(item_id, None)
        if entry is None:
            return None
        entry[2] = False
        return entry[1]

    def peek(self):
        heap = self._heap
        while heap and not heap[0][2]:
            heapq.heappop(heap)
        return heap[0][1] if heap else None

    def peek_key(self):
        heap = self._heap
        while heap and not heap[0][2]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop(self, item_id_of):
        """Pop the minimum item; item_id_of(item) gives its id."""
        heap = self._heap
        while heap:
            entry = heapq.heappop(heap)
            if entry[2]:
                del self._live[item_id_of(entry[1])]
                return entry[1]
        return None

    def ordered_items(self) -> list:
        """All live items in key order (O(n log n); for dashboards, not the hot path)."""
        return [e[1] for e in sorted(self._live.values(), key=lambda e: e[0])]

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if e[2]]
        heapq.heapify(self._heap)
