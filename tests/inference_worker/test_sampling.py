"""Per-request sampling in the engine: validation, greedy-with-penalties equal to ``model.generate``,
seeded sampling that reproduces, and greedy requests untouched by sampled ones in the same batch."""

import pytest
import torch

from inference_worker.engine import SamplingParams
from inference_worker.model_loading import build_random_model, random_config

from .test_engine import VOCAB, assert_clean, drain, make_engine, workload

PENALISED = dict(repetition_penalty=1.3, no_repeat_ngram_size=3)


@pytest.fixture(scope="module")
def qwen():
    return build_random_model(random_config("tiny", vocab_size=VOCAB), "cpu", torch.float32, seed=1)


def generate(model, prompt, n, **settings):
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                             eos_token_id=None, pad_token_id=0, **settings)
    return out[0, len(prompt):].tolist()


def run(model, requests, **engine_settings):
    """requests: (prompt, max_new_tokens, SamplingParams | None); returns each request's tokens."""
    engine_settings.setdefault("kv_device_blocks", 200)
    engine = make_engine(model, **engine_settings)
    for i, (prompt, n, sampling) in enumerate(requests):
        engine.add_request(i, prompt, urgency=0, predicted_output_tokens=n, max_new_tokens=n, sampling=sampling)
    got, _ = drain(engine)
    assert_clean(engine)
    return [got[i] for i in range(len(requests))]


@pytest.mark.parametrize("settings,message", [
    (dict(temperature=-0.1), "temperature"),
    (dict(temperature=float("nan")), "temperature"),
    (dict(top_p=0), "top_p"),
    (dict(top_p=1.5), "top_p"),
    (dict(repetition_penalty=0), "repetition_penalty"),
    (dict(no_repeat_ngram_size=-1), "no_repeat_ngram_size"),
    (dict(no_repeat_ngram_size=2.5), "no_repeat_ngram_size"),
    (dict(stop=("",)), "stop"),
    (dict(seed="7"), "seed"),
])
def test_invalid_settings_name_the_field(settings, message):
    with pytest.raises(ValueError, match=message):
        SamplingParams(**settings)


def test_defaults_are_greedy_and_take_the_fast_path():
    assert SamplingParams().greedy and not SamplingParams().needs_logits
    assert SamplingParams(stop="END").stop == ("END",)
    assert SamplingParams(repetition_penalty=1.1).needs_logits
    assert SamplingParams(temperature=0.3, top_p=0.9).needs_logits


@pytest.mark.parametrize("settings", [dict(repetition_penalty=1.3), dict(no_repeat_ngram_size=2), PENALISED])
def test_greedy_with_penalties_equals_generate(qwen, settings):
    requests = workload(21, 5, max_prompt=30, max_new=30)
    refs = [generate(qwen, p, n, **settings) for p, n, _ in requests]
    assert refs != [generate(qwen, p, n) for p, n, _ in requests], "the settings should change this output"
    got = run(qwen, [(p, n, SamplingParams(**settings)) for p, n, _ in requests], max_batch_size=3, token_budget=16)
    assert got == refs


def test_seed_reproduces_and_seeds_differ(qwen):
    prompt = workload(22, 1)[0][0]
    def sampled(seed):
        return SamplingParams(temperature=1.0, top_p=0.95, seed=seed)
    first, again, other = run(qwen, [(prompt, 24, sampled(7)), (prompt, 24, sampled(7)), (prompt, 24, sampled(8))])
    assert first == again
    assert first != other
    assert run(qwen, [(prompt, 24, sampled(7))]) == [first]  # alone in its batch: the same tokens


def test_greedy_request_beside_sampled_ones_equals_generate(qwen):
    requests = workload(23, 4, max_prompt=30, max_new=20)
    (greedy_prompt, greedy_n, _), (penalised_prompt, penalised_n, _) = requests[:2]
    mixed = [(greedy_prompt, greedy_n, None), (penalised_prompt, penalised_n, SamplingParams(**PENALISED))]
    mixed += [(p, n, SamplingParams(temperature=0.8, seed=i)) for i, (p, n, _) in enumerate(requests[2:])]
    got = run(qwen, mixed, max_batch_size=4, token_budget=64)
    assert got[0] == generate(qwen, greedy_prompt, greedy_n)
    assert got[1] == generate(qwen, penalised_prompt, penalised_n, **PENALISED)


def test_sampled_tokens_follow_the_distribution():
    from collections import Counter
    from types import SimpleNamespace

    from inference_worker.engine.sampler import sample

    seq = SimpleNamespace(sampling=SamplingParams(temperature=1.0, seed=3), token_ids=[0], generator=None)
    logits = torch.full((1, 6), -1e9)
    logits[0, :3] = torch.tensor([0.5, 0.3, 0.2]).log()
    counts = Counter(sample(logits, logits.argmax(-1), [seq])[0] for _ in range(4000))
    assert set(counts) == {0, 1, 2}
    for token, p in enumerate([0.5, 0.3, 0.2]):
        assert abs(counts[token] / 4000 - p) < 0.03
