"""Engine sizing: the CPU KV pool from the longest prompt + answer under a memory cap, the device defaults, the
settings that feed them, and a prompt too long for the limit failing that one request, not the worker."""
import logging

import pytest
import torch
from django.core.exceptions import ImproperlyConfigured

from inference_worker.build import CPU_DEFAULTS, CUDA_DEFAULTS, build_service, engine_config
from inference_worker.engine import Engine, EngineConfig
from inference_worker.model_loading import build_random_model, random_config
from inference_worker.prompting import build_prompt_ids
from triage_site.settings import env_int

# tiny: 2 layers x 2 KV heads x head_dim 32, fp32 -> K and V of a 16-token block = 2*2*16*2*32*4 B = 16 KiB
BLOCK_KIB = 16


@pytest.fixture(scope="module")
def tiny():
    return build_random_model(random_config("tiny", vocab_size=1024), "cpu", torch.float32, seed=1)


def cpu_engine(model, **kw):
    return Engine(model, EngineConfig(kv_block_size=16, **kw), device="cpu")


def test_cpu_pool_is_a_full_batch_at_max_model_len_without_a_cap(tiny):
    engine = cpu_engine(tiny, max_batch_size=8, max_model_len=512)
    assert engine.sched.config.kv_device_blocks == 8 * 512 // 16
    assert engine.max_model_len == 512


def test_memory_cap_bounds_the_cpu_pool(tiny, caplog):
    with caplog.at_level(logging.INFO, logger="inference_worker.engine.engine"):
        engine = cpu_engine(tiny, max_batch_size=8, max_model_len=512, kv_cache_max_mb=1)
    assert engine.sched.config.kv_device_blocks == 1024 // BLOCK_KIB  # 64 blocks, under the batch's 256
    assert engine.kv.cache.shape[2] == 64 + 1  # plus the scratch block
    assert "KV cache on cpu: 64 blocks x 16 tokens = 1024 tokens, 1.0 MB" in caplog.text


def test_cap_too_small_for_one_full_length_request_fails_at_start(tiny):
    with pytest.raises(ValueError, match=r"needs 32 blocks .* raise the KV memory cap"):
        cpu_engine(tiny, max_batch_size=8, max_model_len=512, kv_cache_max_mb=0.25)  # 16 blocks


def test_explicit_block_count_wins(tiny):
    assert cpu_engine(tiny, kv_device_blocks=10, kv_cache_max_mb=1).sched.config.kv_device_blocks == 10


def test_device_defaults():
    cpu = engine_config("cpu", policy="semantic")
    assert (cpu.max_batch_size, cpu.urgent_batch_size, cpu.max_model_len, cpu.kv_cache_max_mb) == \
        (CPU_DEFAULTS.max_batch_size, CPU_DEFAULTS.urgent_batch_size, 1024 + CPU_DEFAULTS.max_answer_tokens, 512)
    cuda = engine_config("cuda", policy="semantic")
    assert (cuda.max_batch_size, cuda.urgent_batch_size, cuda.max_model_len) == \
        (64, None, 1024 + CUDA_DEFAULTS.max_answer_tokens)
    # a prompt token costs less machine time than an output token on both, so remaining work is ranked by time
    assert 0 < cpu.prefill_token_weight < 1 and 0 < cuda.prefill_token_weight < 1
    explicit = engine_config("cpu", policy="fcfs", max_answer_tokens=50, max_prompt_tokens=300, max_batch_size=3,
                             urgent_batch_size=0, kv_cache_max_mb=32)
    assert (explicit.max_batch_size, explicit.urgent_batch_size, explicit.max_model_len, explicit.kv_cache_max_mb) \
        == (3, None, 350, 32)


def test_env_int(monkeypatch):
    monkeypatch.delenv("TRIAGE_TEST_INT", raising=False)
    assert env_int("TRIAGE_TEST_INT", None) is None
    for value, expected in (("auto", 7), ("  ", 7), ("12", 12)):
        monkeypatch.setenv("TRIAGE_TEST_INT", value)
        assert env_int("TRIAGE_TEST_INT", 7) == expected
    monkeypatch.setenv("TRIAGE_TEST_INT", "0")
    assert env_int("TRIAGE_TEST_INT", None, minimum=0) == 0
    with pytest.raises(ImproperlyConfigured, match="TRIAGE_TEST_INT must be at least 1"):
        env_int("TRIAGE_TEST_INT", None)
    monkeypatch.setenv("TRIAGE_TEST_INT", "lots")
    with pytest.raises(ImproperlyConfigured, match="integer or 'auto'"):
        env_int("TRIAGE_TEST_INT", None)


@pytest.mark.django_db(transaction=True)
def test_too_long_prompt_fails_that_request_and_the_rest_are_answered():
    from triage_site.intake import services
    from triage_site.intake.models import MedicalRequest, Status

    probe = build_service(model_name="tiny", device="cpu", policy="semantic", max_answer_tokens=8)
    limit = len(build_prompt_ids(probe.tokenizer, "chest pain since an hour")) + 10
    service = build_service(model_name="tiny", device="cpu", policy="semantic", max_answer_tokens=8,
                            max_prompt_tokens=limit)
    requests = []
    for text in ("my father fell down the stairs and is confused " * 20, "chest pain since an hour"):
        request = MedicalRequest.objects.create(text=text)
        services.record_classification(request.pk, urgency=1, predicted_output_tokens=8)
        requests.append(request)
    for _ in range(200):
        service.run_once()
        if not MedicalRequest.objects.exclude(status__in=(Status.DONE, Status.FAILED)).exists():
            break
    long, short = (MedicalRequest.objects.get(pk=r.pk) for r in requests)
    assert long.status == Status.FAILED and "too long" in long.error and f"at most {limit}" in long.error
    assert short.status == Status.DONE and short.answer


def test_the_worker_ages_by_deadline_by_default_against_the_first_token_targets():
    config = engine_config("cpu", policy="semantic")
    assert (config.aging, config.aging_mode) == (True, "deadline")
    assert config.deadline_targets == (2.0, 10.0, 60.0, 300.0, 900.0)
    custom = engine_config("cpu", policy="semantic", aging="deadline", first_token_targets=(1, 2, 3, 4, 5))
    assert custom.deadline_targets == (1, 2, 3, 4, 5)
    assert engine_config("cpu", policy="semantic", aging="off").aging is False
    assert engine_config("cpu", policy="semantic", aging="admissions").aging_mode == "admissions"


def test_shortest_remaining_inside_a_class_is_off_unless_the_setting_turns_it_on(settings):
    from inference_worker.store import worker_settings

    assert engine_config("cpu", policy="semantic").within_class_preemption is False
    assert engine_config("cpu", policy="semantic", within_class=True).within_class_preemption is True
    settings.TRIAGE_SCHEDULER_WITHIN_CLASS = True
    assert worker_settings()["within_class"] is True
