"""Semantic scheduling for LLM inference (Hua et al. 2025) plus a deterministic simulator. Standard library only."""
from .blocks import blocks_for
from .config import POLICIES, SchedulerConfig
from .core import Scheduler
from .plan import PreemptAction, StepPlan
from .request import KVLocation, RequestState, SchedRequest

__all__ = ["POLICIES", "KVLocation", "PreemptAction", "RequestState", "SchedRequest", "Scheduler", "SchedulerConfig",
           "StepPlan", "blocks_for"]
