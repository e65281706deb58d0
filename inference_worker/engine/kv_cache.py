"""Paged KV cache: fixed-size blocks on the device, a pinned host pool for swapping.

Layout: one tensor ``[num_layers, 2, num_blocks, block_size, num_kv_heads, head_dim]`` on the
device and one of the same shape (``host_blocks``) in host memory.  Block 0 of the device pool is
reserved as a scratch block (padding rows of CUDA-graph batches write there); it is never handed
out, so ``num_blocks`` usable blocks means ``num_blocks + 1`` physical ones.
"""

from __future__ import annotations

import torch


class BlockPool:
    def __init__(self, num_blocks: int, first_id: int = 0):
        self.total = num_blocks
        # pop() from the end: hand out low ids first
        self._free = list(range(first_id + num_blocks - 1, first_id - 1, -1))

    @property
    def num_free(self) -> int:
        return len(self._free)

    @property
    def num_used(self) -> int:
        return self.total - len(self._free)

    def allocate(self, n: int) -> list[int]:
        if n > len(self._free):
            raise RuntimeError(f"out of KV blocks: need {n}, {len(self._free)} free of {self.total}")
        out = [self._free.pop() for _ in range(n)]
        return out

    def free(self, blocks: list[int]) -> None:
        self._free.extend(reversed(blocks))


class PagedKVCache:
    def __init__(self, num_layers: int, num_kv_heads: int, head_dim: int, block_size: int,
                 num_device_blocks: int, num_host_blocks: int, dtype: torch.dtype,
                 device: torch.device | str):
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
        self.device_pool = BlockPool(num_device_blocks, first_id=1)
        self.host_pool = BlockPool(max(num_host_blocks, 0))
        self.block_tables: dict[str, list[int]] = {}   # request -> device blocks
        self.host_tables: dict[str, list[int]] = {}    # request -> host blocks (swapped out)
        # flat per-layer views: [num_slots, kv_heads, head_dim]
        nslots = (num_device_blocks + 1) * block_size
        self.k_layers = [self.cache[l, 0].view(nslots, num_kv_heads, head_dim) for l in range(num_layers)]
        self.v_layers = [self.cache[l, 1].view(nslots, num_kv_heads, head_dim) for l in range(num_layers)]

    @property
    def bytes_per_block(self) -> int:
        return 2 * self.num_layers * self.block_size * self.num_kv_heads * self.head_dim * self.cache.element_size()

    def blocks_needed(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    def ensure(self, request_id: str, num_tokens: int) -> list[int]:
        """Grow the request's device block table to hold ``num_tokens`` tokens."""
        table = self.block_tables.setdefault(request_id, [])
        need = self.blocks_needed(num_tokens) - len(table)
        if need > 0:
            table.extend(self.device_pool.allocate(need))
        return table

    def trim(self, request_id: str, num_tokens: int) -> None:
        """Release blocks beyond what ``num_tokens`` tokens need."""
        table = self.block_tables.get(request_id)
        if not table:
            return
        keep = self.blocks_needed(num_tokens)
        if keep < len(table):
            self.device_pool.free(table[keep:])
            del table[keep:]
        if not table:
            del self.block_tables[request_id]

    def free(self, request_id: str) -> None:
        table = self.block_tables.pop(request_id, None)
        if table:
            self.device_pool.free(table)
        htable = self.host_tables.pop(request_id, None)
        if htable:
            self.host_pool.free(htable)

    def device_blocks_of(self, request_id: str) -> int:
        return len(self.block_tables.get(request_id, ()))

    def swap_out(self, request_id: str) -> None:
        table = self.block_tables.pop(request_id, None)
        if not table:
            return
        if self.host_cache is None:
            raise RuntimeError("swap requested but the engine has no host KV blocks")
        htable = self.host_pool.allocate(len(table))
        src = torch.tensor(table, dtype=torch.long, device=self.device)
        dst = torch.tensor(htable, dtype=torch.long)
        data = self.cache.index_select(2, src)
        self.host_cache.index_copy_(2, dst, data.to("cpu"))
        self.device_pool.free(table)
        self.host_tables[request_id] = htable

    def swap_in(self, request_id: str) -> None:
        htable = self.host_tables.pop(request_id, None)
        if not htable:
            return
        table = self.device_pool.allocate(len(htable))
        src = torch.tensor(htable, dtype=torch.long)
        data = self.host_cache.index_select(2, src)
        if self.device.type == "cuda":
            data = data.pin_memory().to(self.device, non_blocking=True)
        dst = torch.tensor(table, dtype=torch.long, device=self.device)
        self.cache.index_copy_(2, dst, data.to(self.device))
        self.host_pool.free(htable)
        self.block_tables[request_id] = table
