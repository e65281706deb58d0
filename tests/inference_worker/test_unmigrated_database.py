"""An unmigrated database stops the embedded server and the worker at start with one sentence naming the fix,
not a traceback from their first query."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(tmp_path, *args):
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update(TRIAGE_VAR_DIR=str(tmp_path), TRIAGE_INFERENCE_MODEL="tiny", HF_HUB_OFFLINE="1",
               TRIAGE_MODEL_CACHE=str(ROOT / "var" / "models"))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def test_serve_and_the_worker_refuse_an_unmigrated_database_with_the_command_to_run(tmp_path):
    server = run(tmp_path, "manage.py", "serve", "--port", "1")
    assert server.returncode == 1
    assert "unapplied migration" in server.stderr and "python manage.py migrate" in server.stderr
    assert "Traceback" not in server.stderr
    worker = run(tmp_path, "-m", "inference_worker", "--name", "w")
    assert worker.returncode == 2
    assert "refused to start" in worker.stderr and "python manage.py migrate" in worker.stderr
    assert "Traceback" not in worker.stderr
    assert run(tmp_path, "manage.py", "migrate", "--noinput").returncode == 0
    ready = run(tmp_path, "manage.py", "shell", "-c", "from triage_site.database_ready import check_database_ready; "
                "check_database_ready(); print('ready')")
    assert ready.returncode == 0 and ready.stdout.splitlines()[-1] == "ready", ready.stderr[-2000:]
