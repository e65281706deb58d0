"""The simulation replay page in real headless Chromium against a real server (`manage.py serve --no-worker`).

Its server (no inference worker) is seeded with recorded requests; the browser is the shared conftest's.
The test signs in through the login page, sees a form error, replays a recorded window through every policy,
waits for Plotly to draw every chart, and saves a screenshot to test-output/simulation.png.
"""
import re

import pytest

from benchmarks.launch import ROOT, embedded_server
from tests.browser.conftest import new_context

pytestmark = pytest.mark.browser

SCREENSHOT = ROOT / "test-output" / "simulation.png"

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


@pytest.fixture(scope="module")
def simulation_server(tmp_path_factory):
    with embedded_server(tmp_path_factory.mktemp("simulation-server"), "simulator",
                         extra_env={"TRIAGE_TIME_ZONE": "UTC"}, serve_args=["--no-worker"],
                         seed_script=SEED_REQUESTS) as server:
        yield server


def _signed_in_page(server, browser, errors, outside, next_path="/simulation/"):
    base = server["base_url"]
    context = new_context(browser, viewport={"width": 1400, "height": 1000})
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
        page.wait_for_selector("text=Request gap must be greater than 0 seconds")
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
        for chart in ("#chart-mean-waiting", "#chart-p99-waiting", "#chart-attainment"):
            assert page.locator(f"{chart} .main-svg").count() >= 1
            # one bar trace per policy
            assert page.locator(f"{chart} .trace.bars").count() == 4
        assert page.locator("#timeline-charts .chart").count() == 4
        assert page.locator("#gantt-charts .chart").count() == 4
        assert page.locator("#gantt-charts .main-svg").count() >= 4
        assert page.locator("#numbers-table tbody tr").count() == 4 * 6
        first_fcfs = page.locator("#numbers-table tbody tr").first.locator("td")
        assert first_fcfs.nth(0).inner_text() == "fcfs" and first_fcfs.nth(4).inner_text() in ("×1.00", "—")
        assert re.fullmatch(r"\d+\.\d%|—", first_fcfs.nth(11).inner_text())  # first token within target
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
