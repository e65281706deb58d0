"""Continuous-batching inference engine over a paged KV cache, driven by the ``scheduler`` package.

    from inference_worker.engine import Engine, EngineConfig, SamplingParams, StepOutput
    engine = Engine(model, EngineConfig(...), device="cpu" | "cuda")
    engine.add_request(request_id, prompt_token_ids, urgency, predicted_output_tokens, max_new_tokens,
                       sampling=SamplingParams(repetition_penalty=1.2))   # None: greedy
    outputs = engine.step()   # list[StepOutput]
"""

from .config import EngineConfig
from .engine import Engine, StepOutput
from .sampling import SamplingParams

__all__ = ["Engine", "EngineConfig", "SamplingParams", "StepOutput"]
