"""Hardware cost models of the paper's four settings, turned into per-step costs for continuous batching.

Derivation (docs/scheduler.md): the paper's decode cost of o tokens after a p-token prompt,
c1d*(o^2/2 + p*o + o/2) + c2d*o, equals sum_{i=1..o} [c2d + c1d*(p+i)]: token i costs a fixed c2d
(reading the weights) plus c1d per token of context. In a batched decode step the weights are read once,
so a step costs c2d + c1d * sum(context lengths). A prefill chunk of n tokens after c cached tokens
costs prefill(c+n) - prefill(c).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CostModel:
    name: str
    c1d: float
    c2d: float
    c1p: float
    c2p: float
    gpu_gb: float
    swap_per_token: float          # host<->device copy, seconds per token, each direction
    params_billion: float
    kv_bytes_per_token: int        # assumed model shape, see kv_device_blocks()

    def prefill(self, tokens: int) -> float:
        return self.c1p * tokens * tokens + self.c2p * tokens

    def prefill_chunk(self, cached: int, n: int) -> float:
        return self.prefill(cached + n) - self.prefill(cached)

    def decode_step(self, context_sum: int) -> float:
        """One batched decode step; context_sum = sum over decoding requests of their context incl. the new token."""
        return self.c2d + self.c1d * context_sum

    def prefill_token_weight(self, batch_size: int) -> float:
        """A prompt token's machine time over an output token's, the scheduler's unit of remaining work: a prefill
        token holds the whole step (c2p; every running request waits for the chunk), an output token is one of
        `batch_size` in a shared decode step (c2d / batch_size)."""
        return batch_size * self.c2p / self.c2d

    def decode_steps_in(self, seconds: float) -> float:
        """How many decode steps (at c2d each) fit in `seconds`: a wait in the scheduler's unit of work."""
        return seconds / self.c2d

    def recompute_cost_per_token(self, typical_context: int = 500) -> float:
        return self.prefill(typical_context) / typical_context

    def kv_device_blocks(self, block_size: int, memory_utilization: float = 0.8,
                         activation_fraction: float = 0.05) -> int:
        """KV capacity: utilisable GPU memory minus bf16 weights minus activations, in blocks."""
        usable = self.gpu_gb * 1e9 * (memory_utilization - activation_fraction)
        weights = self.params_billion * 1e9 * 2  # bf16
        tokens = int((usable - weights) // self.kv_bytes_per_token)
        return max(1, tokens // block_size)


# KV bytes per token = 2 (K and V) * layers * kv_heads * head_dim * 2 bytes (bf16).
_KV_4B = 2 * 36 * 8 * 128 * 2     # 4B shape: 36 layers, 8 KV heads (GQA), head dim 128 -> 144 KiB
_KV_7B = 2 * 32 * 32 * 128 * 2    # 7B shape: 32 layers, 32 KV heads (MHA), head dim 128 -> 512 KiB

SETTINGS = {
    "A100_4B": CostModel("A100_4B", 5.91298857e-09, 1.195828e-02, 1.46584975e-09, 1.0515576e-04, 40, 1e-4, 4, _KV_4B),
    "A100_7B": CostModel("A100_7B", 1.34911080e-08, 1.330198e-02, 5.13462572e-07, 1.48057167e-04, 40, 1e-4, 7, _KV_7B),
    "A5000_4B": CostModel("A5000_4B", 2.86938135e-06, 3.00834536e-02, 1.58625005e-09, 1.30542054e-04, 24, 3e-4, 4, _KV_4B),
    "A5000_7B": CostModel("A5000_7B", 2.11725653e-06, 2.72656264e-02, 1.85905340e-09, 2.17527368e-04, 24, 3e-4, 7, _KV_7B),
}
