"""Semantic scheduling for LLM inference (Hua et al. 2025) plus a deterministic simulator. Standard library only."""
from .config import POLICIES, SchedulerConfig
from .core import Scheduler
from .request import PreemptAction, SchedRequest, StepPlan

__all__ = ["POLICIES", "PreemptAction", "SchedRequest", "Scheduler", "SchedulerConfig", "StepPlan"]
