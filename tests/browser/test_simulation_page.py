"""The simulation replay page in real headless Chromium against a real server (`manage.py serve --no-worker`).

Fixtures are kept in this file (not the shared conftest): a server on a fresh SQLite file seeded with recorded
requests, and a browser started and stopped here. The test signs in through the login page, sees a form error,
replays a recorded window through every policy, waits for Plotly to draw every chart, and saves a screenshot to
test-output/simulation.png.
"""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
SCREENSHOT = ROOT / "test-output" / "simulation.png"

if not Path(CHROMIUM).exists() and not os.environ.get("TRIAGE_REQUIRE_BROWSER"):
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y --no-install-recommends chromium); "
                "set TRIAGE_REQUIRE_BROWSER=1 to make this a failure", allow_module_level=True)

# 40 recorded requests, bursts of 8 every 2 seconds, on 2026-11-23 from 08:00 UTC.
SEED_REQUESTS = """
import random
from datetime import datetime, timedelta, timezone
from triage_site.intake.models import MedicalRequest
rng = random.Random(7)
start = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
for i in range(40):
    urgency = rng.randint(0, 4)
    output = rng.randint(20, 400)
    r = MedicalRequest.objects.create(text="recorded call %d" % i, status="done", urgency=urgency,
                                      model_urgency=urgency, prompt_tokens=rng.randint(20, 400),
                                      predicted_output_tokens=output, generated_tokens=output)
    MedicalRequest.objects.filter(pk=r.pk).update(created_at=start + timedelta(seconds=2 * (i // 8), milliseconds=i))
"""


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def simulation_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("simulation-server")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"TRIAGE_VAR_DIR": str(tmp / "var"), "TRIAGE_TIME_ZONE": "UTC", "PYTHONUNBUFFERED": "1",
                "HF_HUB_OFFLINE": "1"})

    def manage(*args):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                              capture_output=True, text=True, timeout=180).stdout

    manage("migrate", "--noinput")
    password_file = tmp / "password"
    manage("create_dispatcher", "simulator", "--password-file", str(password_file))
    manage("shell", "-c", SEED_REQUESTS)
    log = open(tmp / "server.log", "w+")
    process = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port), "--no-worker"],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
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
        yield {"base_url": base_url, "username": "simulator", "password": password_file.read_text().strip(),
               "manage": manage}
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.seek(0)
        sys.stdout.write(log.read()[-4000:])
        log.close()


def _signed_in_page(server, browser, errors, outside, next_path="/simulation/"):
    base = server["base_url"]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda req: outside.append(req.url) if not req.url.startswith(base) else None)
    page.goto(f"{base}{next_path}")
    assert "/login/" in page.url
    page.fill("#id_username", server["username"])
    page.fill("#id_password", server["password"])
    page.click("form button[type=submit]")
    page.wait_for_url(f"{base}{next_path}")
    return context, page


def test_replay_page_draws_its_charts(simulation_server, browser):
    base = simulation_server["base_url"]
    errors, outside = [], []
    context, page = _signed_in_page(simulation_server, browser, errors, outside)
    try:

        # A bad parameter comes back as a clear form error.
        synthetic = page.locator("#synthetic form")
        synthetic.locator("#id_user_request_gap").fill("0")
        synthetic.locator("button[type=submit]").click()
        page.wait_for_selector("text=Request gap must be greater than 0 seconds.")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT.with_name("simulation-form.png")), full_page=True)

        # Replay the recorded window through every policy.
        replay = page.locator("#replay form")
        replay.locator("#replay_start").fill("2026-11-23T08:00")
        replay.locator("#replay_end").fill("2026-11-23T09:00")
        replay.locator("#replay_batch_size").fill("4")
        replay.locator("button[type=submit]").click()
        page.wait_for_url(f"{base}/simulation/runs/*/")
        assert page.locator("#run-status").inner_text() == "Done", page.locator("#run-error-text").inner_text()
        assert "40 requests" in page.content()

        page.wait_for_function("document.querySelectorAll('.main-svg').length >= 20")
        for chart in ("#chart-mean-waiting", "#chart-p99-waiting"):
            assert page.locator(f"{chart} .main-svg").count() >= 1
            # one bar trace per policy
            assert page.locator(f"{chart} .trace.bars").count() == 4
        assert page.locator("#timeline-charts .chart").count() == 4
        assert page.locator("#gantt-charts .chart").count() == 4
        assert page.locator("#gantt-charts .main-svg").count() >= 4
        assert page.locator("#numbers-table tbody tr").count() == 4 * 6
        first_fcfs = page.locator("#numbers-table tbody tr").first.locator("td")
        assert first_fcfs.nth(0).inner_text() == "fcfs" and first_fcfs.nth(4).inner_text() in ("×1.00", "—")
        assert page.locator("#run-table tbody tr").count() == 4
        csv = context.request.get(page.url + "results.csv")
        assert csv.ok and csv.text().startswith("policy,class,metric,")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        assert not errors, errors
        assert not outside, f"requests left the server: {outside}"
    finally:
        context.close()


QUEUE_RUN = """
from triage_site.simulation.models import SimulationRun
run = SimulationRun.objects.create(params={"setting": "A100_4B", "user_request_gap": 1.0,
                                           "max_concurrent_user_requests": 3, "gap_num": 3, "batch_size": 4},
                                   policies=["fcfs", "semantic"], seeds=[0])
print(run.pk)
"""


def test_run_page_follows_a_queued_run_until_it_is_done(simulation_server, browser):
    """With a broker the run is still queued when its page opens: the progress bar polls status.json and the
    page shows the charts once a worker has finished it (here the task is run by hand, as a worker would)."""
    manage = simulation_server["manage"]
    run_id = int(manage("shell", "-c", QUEUE_RUN).strip().splitlines()[-1])
    errors, outside = [], []
    context, page = _signed_in_page(simulation_server, browser, errors, outside,
                                    next_path=f"/simulation/runs/{run_id}/")
    try:
        assert page.locator("#run-progress").is_visible()
        assert page.locator("#run-status").inner_text() == "Pending"
        with page.expect_response(lambda r: r.url.endswith(f"/runs/{run_id}/status.json")):
            pass
        manage("shell", "-c", f"from triage_site.simulation.tasks import run_simulation_run; run_simulation_run({run_id})")
        page.wait_for_selector("#run-status:has-text('Done')")
        page.wait_for_function("document.querySelectorAll('#gantt-charts .main-svg').length >= 2")
        assert page.locator("#chart-mean-waiting .trace.bars").count() == 2
        assert not page.locator("#run-progress").is_visible()
        assert not errors, errors
        assert not outside, f"requests left the server: {outside}"
    finally:
        context.close()
