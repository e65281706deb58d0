"""A real server (`manage.py serve`: daphne + the inference worker with the tiny model) and a real
headless Chromium (Debian's package, driven by Playwright's Python API; no `playwright install`)."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
OUTPUT = ROOT / "test-output"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]


def pytest_collection_modifyitems(config, items):
    if Path(CHROMIUM).exists() or os.environ.get("TRIAGE_REQUIRE_BROWSER"):
        return  # where TRIAGE_REQUIRE_BROWSER is set (CI) a missing browser fails the tests instead
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is not installed (apt-get install chromium); "
                                   "set TRIAGE_REQUIRE_BROWSER=1 to make this a failure")
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def triage_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser-server")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update({
        "TRIAGE_VAR_DIR": str(tmp / "var"),
        "TRIAGE_MODEL_CACHE": str(ROOT / "var" / "models"),
        "TRIAGE_INFERENCE_MODEL": "tiny",
        # Long enough (seconds with the tiny model) that the page sees the answer stream while running.
        "TRIAGE_MAX_ANSWER_TOKENS": os.environ.get("TRIAGE_BROWSER_ANSWER_TOKENS", "1500"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    })

    def manage(*args):
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                       capture_output=True, timeout=180)

    manage("migrate", "--noinput")
    password_file = tmp / "password"
    manage("create_dispatcher", "browser", "--password-file", str(password_file))
    log = open(tmp / "server.log", "w+")
    process = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"server exited with {process.returncode}"
            try:
                if httpx.get(f"{base_url}/login/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.3)
        yield {"base_url": base_url, "username": "browser", "password": password_file.read_text().strip()}
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.seek(0)
        sys.stdout.write(log.read()[-4000:])
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def screenshot_dir():
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT
