"""The classifier latency benchmark runs end to end and reports the task's cost beside its baseline."""
import json
import os
import subprocess
import sys

from benchmarks.launch import ROOT


def test_the_benchmark_writes_every_row_and_the_task_ratio(tmp_path):
    out = tmp_path / "latency.json"
    done = subprocess.run([sys.executable, "benchmarks/classifier_latency.py", "--batch", "2", "--rounds", "2",
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    for row in ("per_request_ms_in_batch", "task_per_request_ms_clauses_encoded_twice",
                "task_per_request_ms_clauses_encoded_once"):
        assert figures[row]["batches"] == 2 and figures[row]["p50"] > 0
    assert figures["task_mean_ratio"] > 0 and "clauses encoded once" in done.stdout


def test_bad_arguments_are_refused_with_the_reason():
    done = subprocess.run([sys.executable, "benchmarks/classifier_latency.py", "--batch", "0"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--batch must be 1..64" in done.stderr
