"""EngineConfig: a SchedulerConfig with the engine's defaults, plus the engine's own settings."""

from __future__ import annotations

from dataclasses import dataclass, fields

from scheduler import SchedulerConfig


@dataclass
class EngineConfig(SchedulerConfig):
    """Every SchedulerConfig field, same meaning, but a batch of 64 by default and ``kv_device_blocks=None``:
    the engine sizes the device pool (``kv_cache_fraction`` of free CUDA memory, or on CPU a full batch at
    ``max_model_len``). Then the engine's own settings."""

    max_batch_size: int = 64
    kv_device_blocks: int | None = None
    kv_cache_fraction: float = 0.5
    eos_token_ids: tuple[int, ...] | list[int] = ()
    max_model_len: int | None = None    # default: min(model max positions, 4096)
    use_cuda_graphs: bool = True
    graph_batch_sizes: list[int] | None = None
    check_invariants: bool = False      # assert the cache's blocks agree with the scheduler's every step (tests)

    def validate(self) -> None:
        """As a SchedulerConfig, with kv_device_blocks still allowed to be None."""
        self.scheduler_config(1 if self.kv_device_blocks is None else self.kv_device_blocks)

    def scheduler_config(self, kv_device_blocks: int) -> SchedulerConfig:
        """The engine's scheduler settings, with the device block count the engine settled on."""
        values = {f.name: getattr(self, f.name) for f in fields(SchedulerConfig)}
        values["kv_device_blocks"] = kv_device_blocks
        return SchedulerConfig(**values)
