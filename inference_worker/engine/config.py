"""EngineConfig: a SchedulerConfig with the engine's defaults, plus the engine's own settings."""

from __future__ import annotations

from dataclasses import dataclass, fields

from scheduler import SchedulerConfig


@dataclass
class EngineConfig(SchedulerConfig):
    """Every SchedulerConfig field, same meaning, but a batch of 64 by default and ``kv_device_blocks=None``:
    the engine sizes the device pool (``kv_cache_fraction`` of free CUDA memory, or on CPU a full batch at
    ``max_model_len``, at most ``kv_cache_max_mb``). Then the engine's own settings.

    Why a CPU cap: the KV pool is allocated up front, so a batch of 64 at the model's 4,096 positions held
    12 GB of RAM for SmolLM2-135M; the longest prompt plus the longest answer (``max_model_len``) and a memory
    cap bound it to what the requests can actually use."""

    max_batch_size: int = 64
    kv_device_blocks: int | None = None
    kv_cache_fraction: float = 0.5
    kv_cache_max_mb: float | None = None  # CPU: the KV pool's size cap in MiB (None: no cap)
    eos_token_ids: tuple[int, ...] | list[int] = ()
    max_model_len: int | None = None    # longest prompt + answer; default: min(model max positions, 4096)
    use_cuda_graphs: bool = True
    graph_batch_sizes: list[int] | None = None
    check_invariants: bool = False      # assert the cache's blocks agree with the scheduler's every step (tests)
    enable_prefix_caching: bool = True  # share cached KV blocks of equal prompt prefixes (prefix_cache.py)

    def validate(self) -> None:
        """As a SchedulerConfig, with kv_device_blocks still allowed to be None."""
        self.scheduler_config(1 if self.kv_device_blocks is None else self.kv_device_blocks)
        if self.max_model_len is not None and (not isinstance(self.max_model_len, int) or self.max_model_len < 2):
            raise ValueError(f"max_model_len must be None or an integer >= 2, got {self.max_model_len!r}")
        if self.kv_cache_max_mb is not None and not (isinstance(self.kv_cache_max_mb, (int, float))
                                                     and self.kv_cache_max_mb > 0):
            raise ValueError(f"kv_cache_max_mb must be None or a positive number, got {self.kv_cache_max_mb!r}")

    def scheduler_config(self, kv_device_blocks: int) -> SchedulerConfig:
        """The engine's scheduler settings, with the device block count the engine settled on."""
        values = {f.name: getattr(self, f.name) for f in fields(SchedulerConfig)}
        values["kv_device_blocks"] = kv_device_blocks
        return SchedulerConfig(**values)
