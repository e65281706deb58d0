"""KV block accounting: how many blocks a number of tokens takes, and what the scheduler has reserved.

Why a reservation: (re)admission reserves a request's whole (re)prefill plus its next token, and decoding grows
it a block at a time, so an engine that allocates physical blocks lazily never runs out inside a step. This is the
one count of blocks: the engine's cache keeps only block ids and reports these numbers.

Prefix caching (the engine shares the blocks of equal prompt prefixes) changes nothing here: a request's
reservation still counts every block its tokens need, shared or not, so the sum of reservations bounds the distinct
blocks in use and sharing can never admit more than the device holds (Scheduler._skip_cached_prefixes).
"""
from __future__ import annotations


def blocks_for(tokens: int, block_size: int) -> int:
    """Blocks that hold `tokens` tokens: ceil(tokens / block_size) in integers (exact at any size)."""
    return -(-tokens // block_size)


class BlockLedger:
    """Reserved blocks on the device and the host, per request (`device_blocks`, `host_blocks`) and in total.

    Scheduler._progress, which runs for every request every step, grows `device_used` and `req.device_blocks`
    inline; everything else goes through these methods."""

    __slots__ = ("block_size", "device_capacity", "host_capacity", "device_used", "host_used")

    def __init__(self, block_size: int, device_capacity: int, host_capacity: int) -> None:
        self.block_size = block_size
        self.device_capacity = device_capacity
        self.host_capacity = host_capacity
        self.device_used = 0
        self.host_used = 0

    def computed_blocks(self, req) -> int:
        """Blocks the request's computed tokens occupy (never more than it has reserved)."""
        return blocks_for(req.computed_tokens, self.block_size)

    def admission_blocks(self, req) -> int:
        """Blocks reserved when (re)admitting: the whole (re)prefill plus the next token."""
        return blocks_for(max(req.computed_tokens, req.prefill_target) + 1, self.block_size)

    def device_unreserved(self) -> int:
        return self.device_capacity - self.device_used

    def reserve_device(self, req, blocks: int) -> None:
        """Grow the request's device reservation to `blocks` (never shrinks it)."""
        if blocks > req.device_blocks:
            self.device_used += blocks - req.device_blocks
            req.device_blocks = blocks
            assert self.device_used <= self.device_capacity, "reserved more device blocks than there are"

    def free_device(self, req) -> None:
        self.device_used -= req.device_blocks
        req.device_blocks = 0

    def host_has_room_for(self, req) -> bool:
        return self.host_used + self.computed_blocks(req) <= self.host_capacity

    def move_to_host(self, req) -> None:
        """Swap-out: the device reservation is freed, the host holds the computed tokens' blocks."""
        self.free_device(req)
        req.host_blocks = self.computed_blocks(req)
        self.host_used += req.host_blocks
        assert self.host_used <= self.host_capacity, "swapped out more blocks than the host holds"

    def free_host(self, req) -> None:
        self.host_used -= req.host_blocks
        req.host_blocks = 0
