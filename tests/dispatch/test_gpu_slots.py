"""Replicas on one machine take distinct GPUs (docs/cluster.md): advisory locks on PostgreSQL, one GPU on SQLite.
Run embedded on SQLite and again on PostgreSQL, where the locks are real."""
import pytest
from django.db import connection

from inference_worker import build
from inference_worker.store import WorkerRefused
from triage_site.dispatch import gpu_slots

pytestmark = pytest.mark.django_db(transaction=True)


def test_workers_of_one_pool_take_distinct_gpus_and_a_dead_workers_gpu_is_free_again():
    first = gpu_slots.hold_free_gpu("machine-a", 2)
    try:
        assert first.index == 0
        if connection.vendor == "sqlite":
            return  # one worker only on SQLite (claims.refuse_second_worker): no lock to take
        second = gpu_slots.hold_free_gpu("machine-a", 2)
        assert second.index == 1
        assert gpu_slots.hold_free_gpu("machine-a", 2) is None      # all held: a third replica is refused
        assert gpu_slots.hold_free_gpu("machine-b", 2).index == 0   # another machine's GPUs are its own
        first.release()                                             # the worker's connection dies with it
        again = gpu_slots.hold_free_gpu("machine-a", 2)
        assert again.index == 0
        again.release()
        second.release()
    finally:
        first.release()


def test_pool_keys_are_signed_32_bit_and_differ_by_pool():
    keys = {gpu_slots.pool_key(f"host-{i}") for i in range(50)}
    assert len(keys) == 50 and all(-(1 << 31) <= key < (1 << 31) for key in keys)


class FakeStore:
    def __init__(self, free):
        self.free = free

    def hold_gpu(self, gpu_count):
        return self.free


@pytest.fixture
def four_gpus(monkeypatch):
    import torch

    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    return chosen


def test_a_worker_on_a_machine_with_several_gpus_runs_on_the_one_it_holds(four_gpus):
    assert build.worker_device("auto", FakeStore(free=2)) == "cuda:2"
    assert four_gpus == [2]
    assert build.worker_device("cpu", FakeStore(free=2)) == "cpu"
    assert build.worker_device("cuda:1", FakeStore(free=2)) == "cuda:1"   # an explicit GPU is kept


def test_a_worker_finding_every_gpu_held_is_refused_with_the_reason(four_gpus, settings):
    settings.TRIAGE_GPU_POOL = "rack-3"
    with pytest.raises(WorkerRefused, match="all 4 GPUs .* GPU pool 'rack-3'"):
        build.worker_device("cuda", FakeStore(free=None))
