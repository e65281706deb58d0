"""Starts the system's real processes the way an operator would, for the benchmarks and the tests.

Embedded mode: one `manage.py serve` process on a fresh SQLite file. Full stack: daphne, a
Celery worker and `python -m inference_worker` as separate processes on a fresh PostgreSQL
database and a Redis server. Every wait is bounded. Tests import this module; it imports
nothing from tests/.
"""
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
FULL_STACK = bool(os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout, interval=0.2, message="condition not reached"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"{message} within {timeout} s")


def wait_for_http(base_url, processes, timeout=90):
    """Until the sign-in page answers; fails at once if one of `processes` ({name: Popen}) has exited."""
    def up():
        for name, process in processes.items():
            assert process.poll() is None, f"{name} exited with {process.returncode}"
        try:
            return httpx.get(f"{base_url}/login/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout, interval=0.3, message="web server did not come up")


@contextlib.contextmanager
def embedded_server(tmp, username, *, extra_env=None, serve_args=(), seed_script=None, show_log=True):
    """`manage.py serve` on a fresh SQLite file in `tmp`, with a dispatcher `username`.

    Yields {base_url, username, password, manage, env}; prints the tail of the server's log when done
    (unless `show_log` is false; the log stays in `tmp/server.log`)."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"TRIAGE_VAR_DIR": str(tmp / "var"), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
                **(extra_env or {})})

    def manage(*args):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                              capture_output=True, text=True, timeout=180).stdout

    manage("migrate", "--noinput")
    password_file = tmp / "password"
    manage("create_dispatcher", username, "--password-file", str(password_file))
    if seed_script:
        manage("shell", "-c", seed_script)
    log = open(tmp / "server.log", "w+")
    process = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port), *serve_args],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base_url, {"server": process}, timeout=120)
        yield {"base_url": base_url, "username": username, "password": password_file.read_text().strip(),
               "manage": manage, "env": env}
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        if show_log:
            log.seek(0)
            sys.stdout.write(log.read()[-4000:])
        log.close()


def _database_url(base_url, name):
    return re.sub(r"/[^/?]*(\?|$)", f"/{name}\\1", base_url, count=1)


class Stack:
    """The processes of one deployment (full stack where DATABASE_URL and REDIS_URL are set, else
    embedded), on a database of their own, with a dispatcher `e2e` whose password is in `password_file`."""

    def __init__(self, tmp_path, *, redis_url=None, extra_env=None):
        self.tmp_path = tmp_path
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.database_name = f"triage_e2e_{uuid.uuid4().hex[:8]}"
        self.processes = {}
        self.logs = []
        self.env = {
            **os.environ,
            "TRIAGE_VAR_DIR": str(tmp_path / "var"),
            "TRIAGE_MODEL_CACHE": str(ROOT / "var" / "models"),
            "TRIAGE_INFERENCE_MODEL": "tiny",
            "TRIAGE_MAX_ANSWER_TOKENS": "24",
            "TRIAGE_REDIS_PREFIX": f"triage-e2e-{uuid.uuid4().hex[:8]}",
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1",  # three torch processes share two cores: no spinning thread pools
            **(extra_env or {}),
        }
        self.env.pop("DATABASE_POOL_MAX_SIZE", None)  # the processes run as deployed: with the pool
        if FULL_STACK:
            import psycopg

            self.admin_database_url = os.environ["DATABASE_URL"]  # kept: the caller may change the environment
            with psycopg.connect(self.admin_database_url, autocommit=True) as connection:
                connection.execute(f'CREATE DATABASE "{self.database_name}"')
            self.env["DATABASE_URL"] = _database_url(self.admin_database_url, self.database_name)
            self.env["REDIS_URL"] = redis_url or os.environ["REDIS_URL"]
        else:
            self.env.pop("DATABASE_URL", None)
            self.env.pop("REDIS_URL", None)
        self.manage("migrate", "--noinput")
        self.password_file = tmp_path / "password"
        self.manage("create_dispatcher", "e2e", "--password-file", str(self.password_file))

    def manage(self, *args):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True,
                              capture_output=True, text=True, timeout=180)

    COMMANDS = {
        "serve": lambda port: [sys.executable, "manage.py", "serve", "--port", str(port)],
        "web": lambda port: [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                             "triage_site.asgi:application"],
        # Background work runs at a lower CPU priority than the web server, as `make celery`/`make worker`
        # and the compose file's cpu_shares arrange: on one machine a caller's form post must win the CPU.
        "celery": lambda port: ["nice", "-n", "10", sys.executable, "-m", "celery", "-A", "triage_site", "worker",
                                "--pool=solo", "--loglevel=info", "--without-gossip", "--without-mingle"],
        "worker": lambda port: ["nice", "-n", "10", sys.executable, "-m", "inference_worker"],
    }

    def start(self, name, argv=None):
        log = open(self.tmp_path / f"{name}-{len(self.logs)}.log", "w+")
        self.logs.append((name, log))
        self.processes[name] = subprocess.Popen(argv or self.COMMANDS[name](self.port), cwd=ROOT, env=self.env,
                                                stdout=log, stderr=subprocess.STDOUT)
        if name in ("serve", "web"):
            self.wait_for_http()
        return self.processes[name]

    def start_worker(self, name):
        """One more inference worker, under its own name (several may share the database: docs/cluster.md)."""
        return self.start(name, self.COMMANDS["worker"](self.port) + ["--name", name])

    def log_text(self, name):
        """Everything process `name` has written so far."""
        text = ""
        for logged, log in self.logs:
            if logged == name:
                log.flush()
                with open(log.name) as reader:
                    text += reader.read()
        return text

    def start_all(self):
        for name in (("web", "celery", "worker") if FULL_STACK else ("serve",)):
            self.start(name)

    def kill(self, name, sig=signal.SIGKILL):
        process = self.processes.pop(name)
        process.send_signal(sig)
        process.wait(30)

    def wait_for_http(self, timeout=90):
        wait_for_http(self.base_url, self.processes, timeout)

    def close(self):
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        for name, log in self.logs:
            log.seek(0)
            sys.stdout.write(f"----- {name} -----\n{log.read()[-3000:]}\n")
            log.close()
        if FULL_STACK:
            import psycopg

            with psycopg.connect(self.admin_database_url, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')
