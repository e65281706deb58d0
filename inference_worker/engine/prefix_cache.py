"""Prefix caching: device KV blocks shared by reference count and found again by a hash of their tokens.

Why: triage prompts start with the same system prompt and protocol card, hundreds of tokens that every
request would otherwise prefill again before its first token. A *full* block is named by a hash chained over
its token ids and its predecessor's hash, so equal hashes mean equal whole prefixes (up to a 64-bit hash
collision; the block's own token ids are checked on lookup). A request whose leading blocks are cached
takes them (ref count + 1) instead of computing them.

A device block is in exactly one of three states:
  * in use   ref > 0, held by that many block tables (registered or not);
  * cached   ref == 0 and registered: its KV is still valid and can be reused, or evicted (LRU) when
             the free list is empty; blocks the owner asked to keep (``keep``: the protocol cards' prompt
             prefixes) are evicted only once no other cached block is left;
  * free     ref == 0, not registered.
A block is registered (``register``) only once its tokens' KV is written, and only full blocks are, so a
shared block is never written again: a request writes only past its cached prefix.

In a step (engine.py): the scheduler, after its preemptions, asks for each (re)prefill about to start how many
leading tokens are cached (``PagedKVCache.match_prefix`` takes the blocks) and starts after them; the engine
releases the preempted KV, makes the hits block tables, runs the batch, then registers the blocks it filled.
Preemption: KEEP leaves the blocks held; SWAP copies them to the host and drops the device references (a shared
block stays with its other holders), and swap-in gets fresh blocks, registered again where their hash is not
taken; RECOMPUTE drops the references, and the re-prefill asks again (it may find its own blocks still cached).
"""

from __future__ import annotations

from collections import OrderedDict

_ROOT = 0x5EED  # the predecessor hash of a sequence's first block


def chain_hash(prev_hash: int, token_ids) -> int:
    """The hash of a full block: its predecessor's hash and its own token ids (Python's tuple hash,
    deterministic for ints, far cheaper than the prefill it saves)."""
    return hash((prev_hash, tuple(token_ids)))


def extend_hashes(hashes: list[int], token_ids: list[int], num_blocks: int, block_size: int) -> list[int]:
    """Extend ``hashes`` (the chain hashes of the leading full blocks of ``token_ids``) to ``num_blocks``."""
    prev = hashes[-1] if hashes else _ROOT
    for i in range(len(hashes), num_blocks):
        prev = chain_hash(prev, token_ids[i * block_size:(i + 1) * block_size])
        hashes.append(prev)
    return hashes


class CachingBlockPool:
    """Device block ids with ref counts, a hash -> block table, and two LRUs of cached (ref 0) blocks: the kept
    ones, evicted only when the other is empty, and the rest.

    ``len()`` is what can be allocated: free plus cached blocks. With ``caching`` off nothing is registered,
    so every block with ref 0 is free and the pool behaves as a plain free list."""

    def __init__(self, block_ids: range, caching: bool = True):
        self.caching = caching
        self.block_ids = block_ids
        self.ref = [0] * block_ids.stop               # indexed by block id
        self._free = list(reversed(block_ids))           # pop() from the end: hand out low ids first
        self._cached: OrderedDict[int, None] = OrderedDict()  # least recently released first
        self._kept: OrderedDict[int, None] = OrderedDict()    # the same, for blocks whose hash is kept
        self._kept_hashes: set[int] = set()
        self._block_of: dict[int, int] = {}              # hash -> block
        self._hash_of: dict[int, int] = {}               # block -> hash (registered blocks only)
        self._tokens_of: dict[int, tuple] = {}           # block -> its token ids (collision check)

    def __len__(self) -> int:
        return len(self._free) + len(self._cached) + len(self._kept)

    @property
    def num_cached(self) -> int:
        return len(self._cached) + len(self._kept)

    @property
    def num_kept(self) -> int:
        return len(self._kept)

    @property
    def num_free(self) -> int:
        return len(self._free)

    def allocate(self, n: int) -> list[int]:
        """n blocks for new KV: free ones first, then evict the least recently used cached ones, kept ones last."""
        if n > len(self):
            raise RuntimeError(f"out of KV blocks: need {n}, {len(self)} free or cached")
        out = []
        for _ in range(n):
            if self._free:
                block = self._free.pop()
            else:
                block, _ = (self._cached or self._kept).popitem(last=False)
                self._unregister(block)
            assert self.ref[block] == 0, block
            self.ref[block] = 1
            out.append(block)
        return out

    def free(self, blocks: list[int]) -> None:
        """Drop one reference to each block. Blocks left unreferenced stay cached if registered, the
        table's tail first in the LRU so that a shared prefix outlives the suffixes built on it."""
        ref = self.ref
        for block in reversed(blocks):
            assert ref[block] > 0, f"block {block} freed more often than taken"
            ref[block] -= 1
            if ref[block] == 0:
                if block in self._hash_of:
                    self._lru_of(block)[block] = None
                else:
                    self._free.append(block)

    def lookup(self, block_hash: int, token_ids) -> int | None:
        """The registered block with this hash and these token ids, or None."""
        block = self._block_of.get(block_hash)
        if block is None or self._tokens_of[block] != tuple(token_ids):
            return None
        return block

    def keep(self, blocks: list[int]) -> None:
        """Keep these registered blocks: cached, they are evicted only after every other cached block, and among
        the kept ones these go last, the table's head last (as ``free`` orders them). A block in use is kept once
        it is released; a kept block evicted and computed again is kept again (its hash is)."""
        for block in reversed(blocks):
            self._kept_hashes.add(self._hash_of[block])
            if block in self._cached:
                del self._cached[block]
            if self.ref[block] == 0:
                self._kept[block] = None
                self._kept.move_to_end(block)

    def _lru_of(self, block: int) -> OrderedDict:
        return self._kept if self._hash_of[block] in self._kept_hashes else self._cached

    def take(self, block: int) -> None:
        """One more reference to a registered block (a prefix hit); a cached one leaves the LRU."""
        assert block in self._hash_of, block
        if self.ref[block] == 0:
            del self._lru_of(block)[block]
        self.ref[block] += 1

    def register(self, block: int, block_hash: int, token_ids) -> None:
        """Make a written, full, in-use block findable. A hash already registered keeps its block (two
        requests computed the same prefix at once): this block then stays private and is freed normally."""
        if not self.caching or block_hash in self._block_of or block in self._hash_of:
            return
        assert self.ref[block] > 0, f"registering block {block} that nobody holds"
        self._block_of[block_hash] = block
        self._hash_of[block] = block_hash
        self._tokens_of[block] = tuple(token_ids)

    def _unregister(self, block: int) -> None:
        block_hash = self._hash_of.pop(block, None)
        if block_hash is not None:
            del self._block_of[block_hash]
            del self._tokens_of[block]

    def check(self, refs: dict[int, int]) -> None:
        """Invariants, given how many block tables hold each block: ref counts match exactly, and every
        block is in use, cached or free, once."""
        for block in self.block_ids:
            assert self.ref[block] == refs.get(block, 0), (block, self.ref[block], refs.get(block, 0))
        free, cached = set(self._free), set(self._cached) | set(self._kept)
        assert len(free) == len(self._free) and not free & cached, "a block is listed twice"
        assert len(cached) == len(self._cached) + len(self._kept), "a block is cached twice"
        assert all(self._lru_of(b) is self._kept for b in self._kept)
        assert all(self._lru_of(b) is self._cached for b in self._cached)
        assert all(self.ref[b] == 0 and b not in self._hash_of for b in free)
        assert all(self.ref[b] == 0 and b in self._hash_of for b in cached)
        assert len(refs) + len(free) + len(cached) == len(self.block_ids), \
            (len(refs), len(free), len(cached), len(self.block_ids))
        assert all(self._block_of[h] == b for b, h in self._hash_of.items())
        assert len(self._block_of) == len(self._hash_of) == len(self._tokens_of)
