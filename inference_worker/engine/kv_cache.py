"""Paged KV cache: fixed-size blocks on the device, a pinned host pool for swapping.

Layout: one tensor ``[num_layers, 2, num_blocks, block_size, num_kv_heads, head_dim]`` on the
device and one of the same shape (``host_blocks``) in host memory.  Block 0 of the device pool is
reserved as a scratch block (padding rows of CUDA-graph batches write there); it is never handed
out, so ``num_blocks`` usable blocks means ``num_blocks + 1`` physical ones.

The cache holds only physical block ids: which are free, and which each request holds (its block
table). How many blocks are reserved is counted once, by the scheduler (``scheduler/blocks.py``);
``Engine.check_invariants`` checks that the tables never hold more than that.

Device blocks are ref counted and full ones are shared between requests with equal prefixes
(``prefix_cache.py``): a table may start with blocks that other tables hold too.
"""

from __future__ import annotations

import numpy as np
import torch

from scheduler import blocks_for

from .prefix_cache import CachingBlockPool, extend_hashes


def kv_bytes_per_block(num_layers: int, num_kv_heads: int, head_dim: int, block_size: int,
                       dtype: torch.dtype) -> int:
    """K and V of one block across all layers."""
    return 2 * num_layers * block_size * num_kv_heads * head_dim * torch.empty((), dtype=dtype).element_size()


class BlockPool:
    """The free physical block ids of one memory (device or host)."""

    def __init__(self, block_ids: range):
        self._free = list(reversed(block_ids))  # pop() from the end: hand out low ids first

    def __len__(self) -> int:
        return len(self._free)

    def allocate(self, n: int) -> list[int]:
        if n > len(self._free):
            raise RuntimeError(f"out of KV blocks: need {n}, {len(self._free)} free")
        return [self._free.pop() for _ in range(n)]

    def free(self, blocks: list[int]) -> None:
        self._free.extend(reversed(blocks))


class PagedKVCache:
    def __init__(self, num_layers: int, num_kv_heads: int, head_dim: int, block_size: int,
                 num_device_blocks: int, num_host_blocks: int, dtype: torch.dtype,
                 device: torch.device | str, prefix_caching: bool = True):
        self.device = torch.device(device)
        self.block_size = block_size
        self.num_layers = num_layers
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim
        self.dtype = dtype
        shape = (num_layers, 2, num_device_blocks + 1, block_size, num_kv_heads, head_dim)
        self.cache = torch.zeros(shape, dtype=dtype, device=self.device)
        pin = self.device.type == "cuda"
        hshape = (num_layers, 2, max(num_host_blocks, 0), block_size, num_kv_heads, head_dim)
        self.host_cache = torch.zeros(hshape, dtype=dtype, pin_memory=pin) if num_host_blocks > 0 else None
        # block 0 is the scratch block; free + cached (prefix_cache.py) blocks are allocatable
        self.device_free = CachingBlockPool(range(1, num_device_blocks + 1), caching=prefix_caching)
        self.host_free = BlockPool(range(max(num_host_blocks, 0)))
        self.block_tables: dict[str, list[int]] = {}   # request -> device blocks
        self.host_tables: dict[str, list[int]] = {}    # request -> host blocks (swapped out)
        self.block_hashes: dict[str, list[int]] = {}   # request -> chain hashes of its table's registered head
        self._hits: dict[str, tuple[list[int], list[int]]] = {}  # prefix hits taken this step, not yet tabled
        # flat per-layer views: [num_slots, kv_heads, head_dim]
        nslots = (num_device_blocks + 1) * block_size
        self.k_layers = [self.cache[l, 0].view(nslots, num_kv_heads, head_dim) for l in range(num_layers)]
        self.v_layers = [self.cache[l, 1].view(nslots, num_kv_heads, head_dim) for l in range(num_layers)]

    @property
    def bytes_per_block(self) -> int:
        return kv_bytes_per_block(self.num_layers, self.num_kv_heads, self.head_dim, self.block_size, self.dtype)

    def ensure(self, request_id: str, num_tokens: int) -> list[int]:
        """Grow the request's device block table to hold ``num_tokens`` tokens."""
        table = self.block_tables.setdefault(request_id, [])
        need = blocks_for(num_tokens, self.block_size) - len(table)
        if need > 0:
            table.extend(self.device_free.allocate(need))
        return table

    def slot(self, table: list[int], position: int) -> int:
        """The flat cache slot of one token position of a request with this block table."""
        return table[position // self.block_size] * self.block_size + position % self.block_size

    def context_slots(self, table: list[int], num_tokens: int) -> np.ndarray:
        """The slots of positions 0..num_tokens-1 (int64), in one vectorised pass for prefill chunks."""
        positions = np.arange(num_tokens)
        blocks = np.asarray(table, dtype=np.int64)
        return blocks[positions // self.block_size] * self.block_size + positions % self.block_size

    def free(self, request_id: str) -> None:
        self.block_hashes.pop(request_id, None)
        table = self.block_tables.pop(request_id, None)
        if table:
            self.device_free.free(table)
        htable = self.host_tables.pop(request_id, None)
        if htable:
            self.host_free.free(htable)

    def device_blocks_of(self, request_id: str) -> int:
        return len(self.block_tables.get(request_id, ()))

    def swap_out(self, request_id: str) -> None:
        """Copy to the host and drop the device references (shared blocks stay with their other holders)."""
        self.block_hashes.pop(request_id, None)
        table = self.block_tables.pop(request_id, None)
        if not table:
            return
        if self.host_cache is None:
            raise RuntimeError("swap requested but the engine has no host KV blocks")
        htable = self.host_free.allocate(len(table))
        src = torch.tensor(table, dtype=torch.long, device=self.device)
        dst = torch.tensor(htable, dtype=torch.long)
        data = self.cache.index_select(2, src)
        self.host_cache.index_copy_(2, dst, data.to("cpu"))
        self.device_free.free(table)
        self.host_tables[request_id] = htable

    def swap_in(self, request_id: str) -> None:
        htable = self.host_tables.pop(request_id, None)
        if not htable:
            return
        table = self.device_free.allocate(len(htable))
        src = torch.tensor(htable, dtype=torch.long)
        data = self.host_cache.index_select(2, src)
        if self.device.type == "cuda":
            data = data.pin_memory().to(self.device, non_blocking=True)
        dst = torch.tensor(table, dtype=torch.long, device=self.device)
        self.cache.index_copy_(2, dst, data.to(self.device))
        self.host_free.free(htable)
        self.block_tables[request_id] = table

    # ------------------------------------------------------------------ prefix caching (prefix_cache.py)
    def match_prefix(self, request_id, token_ids: list[int]) -> int:
        """Take (ref + 1) the cached leading full blocks of ``token_ids``, short of its last token (which
        must be computed to sample from); returns how many tokens they hold.

        Called while the scheduler plans a step, before that step's preempted KV is released, so the
        blocks wait in ``_hits`` until ``commit_prefix_hits`` makes them the head of the block table."""
        assert request_id not in self._hits, request_id
        hashes, blocks = self._cached_head(token_ids, (len(token_ids) - 1) // self.block_size)
        for block in blocks:
            self.device_free.take(block)
        if blocks:
            self._hits[request_id] = (blocks, hashes)
        return len(blocks) * self.block_size

    def _cached_head(self, token_ids: list[int], max_blocks: int) -> tuple[list[int], list[int]]:
        """(chain hashes, blocks) of the leading full blocks of ``token_ids`` the pool holds, at most
        ``max_blocks``; nothing when caching is off."""
        pool, bs = self.device_free, self.block_size
        hashes, blocks = [], []
        for i in range(max_blocks if pool.caching else 0):
            extend_hashes(hashes, token_ids, i + 1, bs)
            block = pool.lookup(hashes[i], token_ids[i * bs:(i + 1) * bs])
            if block is None:
                hashes.pop()
                break
            blocks.append(block)
        return hashes, blocks

    def keep_prefix(self, token_ids: list[int]) -> int:
        """Keep the cached leading full blocks of ``token_ids`` (``CachingBlockPool.keep``), without taking
        them; returns how many tokens they hold."""
        _, blocks = self._cached_head(token_ids, len(token_ids) // self.block_size)
        self.device_free.keep(blocks)
        return len(blocks) * self.block_size

    def cached_prefix_tokens(self, token_ids: list[int]) -> int:
        """How many leading tokens of ``token_ids`` the cache holds in full blocks; nothing taken or touched."""
        _, blocks = self._cached_head(token_ids, len(token_ids) // self.block_size)
        return len(blocks) * self.block_size

    def commit_prefix_hits(self) -> None:
        """The step's prefix hits become their requests' block tables (those were released or empty)."""
        for request_id, (blocks, hashes) in self._hits.items():
            assert not self.block_tables.get(request_id) and request_id not in self.host_tables, request_id
            self.block_tables[request_id] = blocks
            self.block_hashes[request_id] = hashes
        self._hits.clear()

    def register_written(self, request_id, token_ids: list[int], num_tokens: int) -> None:
        """Register the request's blocks that ``num_tokens`` tokens of written KV fill."""
        pool = self.device_free
        if not pool.caching:
            return
        bs = self.block_size
        hashes = self.block_hashes.setdefault(request_id, [])
        full = num_tokens // bs
        if full <= len(hashes):
            return
        table = self.block_tables[request_id]
        start = len(hashes)
        extend_hashes(hashes, token_ids, full, bs)
        for i in range(start, full):
            pool.register(table[i], hashes[i], token_ids[i * bs:(i + 1) * bs])
