"""The embedded SQLite mode runs one inference worker: a second `python -m inference_worker` started against the
same SQLite database while the first is alive exits at once with a message (docs/cluster.md)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_second_worker_on_sqlite_exits_with_a_clear_message(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update(TRIAGE_VAR_DIR=str(tmp_path), TRIAGE_INFERENCE_MODEL="tiny", HF_HUB_OFFLINE="1",
               TRIAGE_MODEL_CACHE=str(ROOT / "var" / "models"))

    def run(*args, timeout=180):
        return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)

    assert run("manage.py", "migrate", "--noinput").returncode == 0
    alive = run("manage.py", "shell", "-c", "from triage_site.dispatch.models import WorkerHeartbeat; "
                "WorkerHeartbeat.objects.create(worker_name='web-server:1', queue_order=[], stats={})")
    assert alive.returncode == 0, alive.stderr
    second = run("-m", "inference_worker", "--name", "second")
    assert second.returncode == 2, second.stderr[-2000:]
    assert "web-server:1" in second.stderr and "SQLite mode runs one worker" in second.stderr
    assert "DATABASE_URL" in second.stderr
