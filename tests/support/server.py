"""`manage.py serve` on a fresh SQLite file (embedded mode), for the browser tests and the dashboard benchmark:
one place that starts and stops it."""
import contextlib
import os
import subprocess
import sys

from tests.support.stack import ROOT, free_port, wait_for_http


@contextlib.contextmanager
def embedded_server(tmp, username, *, extra_env=None, serve_args=(), seed_script=None, show_log=True):
    """Yields {base_url, username, password, manage, env}; prints the tail of the server's log when done
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

