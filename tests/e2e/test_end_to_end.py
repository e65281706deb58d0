"""End to end: the intake form over HTTP, real processes, the status changes seen over the websocket.

Embedded mode (no DATABASE_URL/REDIS_URL): one `manage.py serve` process on a fresh SQLite file.
Full stack: daphne, a Celery worker and `python -m inference_worker` as separate processes on a
fresh PostgreSQL database and the real Redis.
"""
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
FULL_STACK = bool(os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_postgres_url(base_url, name):
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return re.sub(r"/[^/?]*(\?|$)", f"/{name}\\1", base_url, count=1)


def drop_postgres_database(base_url, name):
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def stack(tmp_path):
    """Starts the system the way a person would, and stops it afterwards."""
    port = free_port()
    env = {
        **os.environ,
        "TRIAGE_VAR_DIR": str(tmp_path / "var"),
        "TRIAGE_MODEL_CACHE": str(ROOT / "var" / "models"),
        "TRIAGE_INFERENCE_MODEL": "tiny",
        "TRIAGE_MAX_ANSWER_TOKENS": "24",
        "TRIAGE_REDIS_PREFIX": f"triage-e2e-{uuid.uuid4().hex[:8]}",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    database_name = f"triage_e2e_{uuid.uuid4().hex[:8]}"
    if FULL_STACK:
        env["DATABASE_URL"] = fresh_postgres_url(os.environ["DATABASE_URL"], database_name)
    else:
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)

    def manage(*args):
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                       capture_output=True, timeout=120)

    manage("migrate", "--noinput")
    password_file = tmp_path / "password"
    manage("create_dispatcher", "e2e", "--password-file", str(password_file))

    if FULL_STACK:
        commands = [
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "triage_site.asgi:application"],
            [sys.executable, "-m", "celery", "-A", "triage_site", "worker", "--pool=solo", "--loglevel=info"],
            [sys.executable, "-m", "inference_worker"],
        ]
    else:
        commands = [[sys.executable, "manage.py", "serve", "--port", str(port)]]
    logs = []
    processes = []
    for index, command in enumerate(commands):
        log = open(tmp_path / f"process-{index}.log", "w+")
        logs.append(log)
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base_url, processes)
        yield {"base_url": base_url, "port": port, "password": password_file.read_text().strip(),
               "env": env, "logs": logs}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.seek(0)
            sys.stdout.write(log.read()[-4000:])
            log.close()
        if FULL_STACK:
            drop_postgres_database(os.environ["DATABASE_URL"], database_name)


def wait_for_http(base_url, processes, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            assert process.poll() is None, f"{process.args} exited with {process.returncode}"
        try:
            if httpx.get(f"{base_url}/login/", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("web server did not come up")


def sign_in(base_url, password):
    client = httpx.Client(base_url=base_url, timeout=30)
    page = client.get("/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = client.post("/login/", data={"username": "e2e", "password": password,
                                            "csrfmiddlewaretoken": token, "next": "/dispatch/"})
    assert response.status_code == 302, response.text[:500]
    return client


class BoardWatcher(threading.Thread):
    """Collects every board snapshot the websocket delivers."""

    def __init__(self, port, session_id):
        super().__init__(daemon=True)
        self.socket = connect(f"ws://127.0.0.1:{port}/ws/board/", origin=f"http://127.0.0.1:{port}",
                              additional_headers={"Cookie": f"sessionid={session_id}"}, open_timeout=10)
        self.boards = []
        self.start()

    def run(self):
        try:
            for raw in self.socket:
                message = json.loads(raw)
                if message["type"] == "board":
                    self.boards.append(message["board"])
        except Exception:
            pass

    def statuses_of(self, request_id):
        seen = []
        for board in list(self.boards):
            for row in board["open"] + board["finished"]:
                if row["id"] == request_id and (not seen or seen[-1] != row["status"]):
                    seen.append(row["status"])
        return seen


@pytest.mark.timeout(300)
def test_request_travels_from_form_to_answer(stack):
    client = sign_in(stack["base_url"], stack["password"])
    watcher = BoardWatcher(stack["port"], client.cookies["sessionid"])
    try:
        page = client.get("/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = client.post("/", data={"text": "My husband collapsed and is not breathing",
                                          "location": "4 Elm Road", "csrfmiddlewaretoken": token})
        assert response.status_code == 302
        request_id = int(re.search(r"/requests/(\d+)/", response.headers["location"]).group(1))

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "done" not in watcher.statuses_of(request_id):
            time.sleep(0.2)
        statuses = watcher.statuses_of(request_id)
        assert statuses and statuses[-1] == "done", statuses
        order = ["received", "classifying", "queued", "running", "done"]
        assert statuses == sorted(statuses, key=order.index), statuses
        assert len(statuses) >= 2, statuses

        detail = client.get(f"/requests/{request_id}/").text
        assert "Done" in detail
        answer = re.search(r'<pre id="answer" class="answer card">(.*?)</pre>', detail, re.S).group(1)
        assert answer.strip(), "the stored answer is empty"
        finished = [row for row in watcher.boards[-1]["finished"] if row["id"] == request_id][0]
        assert finished["urgency"] == 0 and finished["generated_tokens"] > 0
    finally:
        watcher.socket.close()
