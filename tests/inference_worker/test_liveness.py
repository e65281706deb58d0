"""A worker inside a long engine step (seconds on a CPU with a full batch) still reports itself, as busy."""
import threading
import time

from inference_worker.service import InferenceService


class SlowEngine:
    """One step that takes `seconds`, then nothing to do."""

    def __init__(self, seconds):
        self.seconds, self.steps = seconds, 0

    def has_work(self):
        return self.steps == 0

    def step(self):
        self.steps += 1
        time.sleep(self.seconds)
        return []

    def stats(self):
        return {}

    def queue_order(self):
        return []


class LivenessStore:
    worker_name = "test"

    def __init__(self):
        self.inbox = self
        self.busy, self.heartbeats = [], []

    def receive(self, timeout=0.0):
        time.sleep(timeout)
        return []

    def recover_interrupted(self):
        return 0

    def other_workers_alive(self):  # one worker: it claims every queued request
        return False

    def queued(self, exclude_ids=(), room=None, more_urgent_than=None):
        return []

    def open_urgencies(self, request_ids):
        return {}

    def resend_unclassified(self, older_than_seconds):
        return 0

    def heartbeat(self, queue_order, stats):
        self.heartbeats.append((time.monotonic(), stats))

    def heartbeat_busy(self, step_running_s):
        self.busy.append((time.monotonic(), step_running_s))

    def close(self):
        pass


def test_a_long_step_is_reported_busy_every_interval_and_quick_loops_are_not():
    engine, store = SlowEngine(seconds=1.6), LivenessStore()
    service = InferenceService(engine, tokenizer=None, store=store, heartbeat_interval=0.3)
    stop = threading.Event()
    worker = threading.Thread(target=service.run, args=(stop,))
    worker.start()
    time.sleep(2.6)  # the 1.6 s step, then a second of idle loops
    stop.set()
    worker.join(5)
    running_for = [seconds for _, seconds in store.busy]
    assert len(running_for) >= 3, store.busy        # about every 0.3 s from 0.3 s into the step
    assert running_for == sorted(running_for) and 0.3 <= running_for[0] and running_for[-1] <= 1.7
    step_end = store.busy[-1][0]
    assert all(at > step_end for at, _ in store.heartbeats[1:])  # the loop's own heartbeats resume after it
