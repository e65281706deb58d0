"""Running a shift on the board in real Chromium: alerts acknowledged by mouse and keyboard, escalation,
time against target, confirming an urgency, the keyboard, and an axe-core audit of every page, each under its
content security policy.

The server runs with short targets (alerts overdue after 4 s, levels 3-4 over target after 8 s) so that
escalation and the change of target state happen within a test."""
import json
import re
import time
from pathlib import Path

import pytest

from benchmarks.launch import ROOT, embedded_server
from tests.browser.conftest import OUTPUT, new_context
from tests.browser.test_dashboard import sign_in

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
# Records what the page's Content-Security-Policy blocked (a script, a style, a socket), on every page.
CSP_SPY = """document.addEventListener("securitypolicyviolation", (event) => {
  (window.__cspViolations = window.__cspViolations || []).push(`${event.violatedDirective} ${event.blockedURI}`);
});"""
ACK_TARGET_S = 4
LOW_TARGET_S = 8

# Counts the tones the board plays (each beep is three oscillators), without changing its script.
SOUND_SPY = """
(() => {
  window.__oscillators = 0;
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return;
  const create = Context.prototype.createOscillator;
  Context.prototype.createOscillator = function () { window.__oscillators += 1; return create.call(this); };
})();
"""

# A request the classifier is still working on, at level 4, that arrived `age` seconds ago: it cannot reach
# the worker, so its wait grows through the target states while the test watches.
WAITING_REQUEST = """
from datetime import timedelta
from django.utils import timezone
from triage_site.intake.models import MedicalRequest, Status
r = MedicalRequest.objects.create(text="Wants to renew a repeat prescription", status=Status.CLASSIFYING, urgency=4)
MedicalRequest.objects.filter(pk=r.pk).update(created_at=timezone.now() - timedelta(seconds={age}))
print(r.pk)
"""

NEEDS_REVIEW = """
from triage_site.intake.models import MedicalRequest
MedicalRequest.objects.filter(pk={pk}).update(needs_review=True)
"""

WATCH_STATES = """
(id) => {
  window.__targetStates = [];
  const seen = () => {
    const cell = document.querySelector(`#open-requests tr[data-id="${id}"] td.age`);
    const state = cell ? cell.dataset.state : null;
    if (state && window.__targetStates[window.__targetStates.length - 1] !== state) window.__targetStates.push(state);
  };
  new MutationObserver(seen).observe(document.getElementById("open-requests"), {childList: true, subtree: true, characterData: true, attributes: true});
  seen();
}
"""


@pytest.fixture(scope="module")
def shift_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shift-server")
    extra_env = {
        "TRIAGE_MODEL_CACHE": str(ROOT / "var" / "models"),
        "TRIAGE_INFERENCE_MODEL": "tiny",
        "TRIAGE_MAX_ANSWER_TOKENS": "300",
        "TRIAGE_ACKNOWLEDGE_TARGETS_S": f"{ACK_TARGET_S},{ACK_TARGET_S},-,-,-",
        "TRIAGE_FIRST_TOKEN_TARGETS_S": f"2,10,60,{LOW_TARGET_S},{LOW_TARGET_S}",
    }
    with embedded_server(tmp, "shift", extra_env=extra_env) as server:
        password_file = tmp / "supervisor-password"
        server["manage"]("create_dispatcher", "boss", "--supervisor", "--password-file", str(password_file))
        server["supervisor_password"] = password_file.read_text().strip()
        yield server


def board_page(browser, server, *, user=None, password=None, enforce_csp=False):
    context = new_context(browser, enforce_csp=enforce_csp, viewport={"width": 1400, "height": 1100})
    context.add_init_script(SOUND_SPY)
    context.add_init_script(CSP_SPY)
    page = context.new_page()
    if user:
        server = dict(server, username=user, password=password)
    sign_in(page, server)
    page.wait_for_selector('#connection[data-state="live"]', timeout=15000)
    return context, page


def submit(context, server, text):
    intake = context.new_page()
    intake.goto(f"{server['base_url']}/")
    intake.fill("#id_text", text)
    intake.click("main button[type=submit]")
    intake.wait_for_url(re.compile(r".*/requests/\d+/$"))
    request_id = int(re.search(r"/requests/(\d+)/", intake.url).group(1))
    intake.close()
    return request_id


def alert_box(request_id):
    return f'#announcements .announcement[data-id="{request_id}"]'


def test_alerts_are_acknowledged_by_mouse_and_by_keyboard(shift_server, browser):
    context, board = board_page(browser, shift_server)
    try:
        first = submit(context, shift_server, "My husband collapsed and is not breathing")
        board.wait_for_selector(alert_box(first), timeout=20000)
        assert first in json.loads(board.evaluate("JSON.stringify([...document.querySelectorAll('#announcements .announcement')].map(b => Number(b.dataset.id)))"))
        assert "New alert" in board.text_content("#announcer")

        # By mouse: the alert leaves the queue, the row says who acknowledged it and how fast.
        board.click(f"{alert_box(first)} button.acknowledge")
        board.wait_for_selector(alert_box(first), state="detached", timeout=10000)
        board.wait_for_selector('#action-result[data-ok="1"]', timeout=5000)
        assert re.match(rf"Request {first} acknowledged after \d+ s\.", board.text_content("#action-result"))
        cell = board.locator(f'tr[data-id="{first}"] td.alert-cell')
        cell.wait_for(timeout=10000)
        assert "acknowledged by shift" in cell.text_content()

        # By keyboard: f focuses the most urgent unacknowledged alert's request, a acknowledges it.
        second = submit(context, shift_server, "She is not breathing and has no pulse, we started CPR")
        board.wait_for_selector(alert_box(second), timeout=20000)
        board.locator("h1").click()  # focus on the page, not in a form
        board.keyboard.press("f")
        board.wait_for_function(f"document.activeElement && document.activeElement.closest('[data-id=\"{second}\"]') !== null")
        board.keyboard.press("a")
        board.wait_for_selector(alert_box(second), state="detached", timeout=10000)

        # The request page shows the acknowledgement.
        page = context.new_page()
        page.goto(f"{shift_server['base_url']}/requests/{second}/")
        page.wait_for_selector("#alert:not([hidden])")
        # the same words whether the page rendered them (template line breaks) or the live update wrote them
        state = " ".join(page.text_content("#alert-state").split())
        assert re.search(r"Acknowledged by shift at .+, \d+ s after the alert\.", state), state
        assert page.locator("#acknowledge-form").is_hidden()
        page.screenshot(path=str(OUTPUT / "request-acknowledged.png"), full_page=True)
    finally:
        context.close()


def test_an_alert_nobody_acknowledges_escalates_with_sound(shift_server, browser):
    context, board = board_page(browser, shift_server)
    try:
        board.click("#sound-toggle")
        request_id = submit(context, shift_server, "Baby is blue and not breathing")
        board.wait_for_selector(alert_box(request_id), timeout=20000)
        board.wait_for_function("window.__oscillators >= 3", timeout=5000)  # the arrival's tone
        at_arrival = board.evaluate("window.__oscillators")
        board.wait_for_selector(f'{alert_box(request_id)}[data-state="overdue"]', timeout=(ACK_TARGET_S + 5) * 1000)
        assert "OVERDUE" in board.text_content(alert_box(request_id))
        board.wait_for_function(f"window.__oscillators > {at_arrival}", timeout=5000)  # the tone repeats
        assert "Alert overdue" in board.text_content("#announcer")
        row = f'tr[data-id="{request_id}"] td.alert-cell'
        board.wait_for_selector(f'{row}[data-state="overdue"]', timeout=3000)  # the row says so too
        assert "overdue" in board.text_content(row)
        board.screenshot(path=str(OUTPUT / "board-overdue-alert.png"), full_page=True)
        # Another dashboard opened now shows it overdue too: the state comes from the stored alert time.
        other_context, other = board_page(browser, shift_server)
        try:
            other.wait_for_selector(f'{alert_box(request_id)}[data-state="overdue"]', timeout=5000)
        finally:
            other_context.close()
        board.click(f"{alert_box(request_id)} button.acknowledge")
        board.wait_for_selector(alert_box(request_id), state="detached", timeout=10000)
    finally:
        context.close()


def test_a_waiting_row_moves_from_within_to_near_to_over_its_target(shift_server, browser):
    context, board = board_page(browser, shift_server)
    try:
        request_id = int(shift_server["manage"]("shell", "-c", WAITING_REQUEST.format(age=4)).strip().splitlines()[-1])
        board.wait_for_selector(f'#open-requests tr[data-id="{request_id}"]', timeout=10000)
        board.evaluate(WATCH_STATES, request_id)
        board.wait_for_selector(f'tr[data-id="{request_id}"] td.age[data-state="over"]', timeout=(LOW_TARGET_S + 4) * 1000)
        states = board.evaluate("window.__targetStates")
        assert states[-1] == "over" and "near" in states, states
        assert states == sorted(states, key=["within", "near", "over"].index), states
        text = board.text_content(f'tr[data-id="{request_id}"] td.age')
        assert text.startswith("⚠") and text.endswith("over") and f"/ {LOW_TARGET_S} s" in text  # icon and words
        assert "(8 s)" in board.text_content("#attainment")
    finally:
        context.close()


def test_a_supervisor_confirms_an_urgency_with_one_key(shift_server, browser):
    context, board = board_page(browser, shift_server, user="boss", password=shift_server["supervisor_password"])
    try:
        request_id = int(shift_server["manage"]("shell", "-c", WAITING_REQUEST.format(age=0)).strip().splitlines()[-1])
        shift_server["manage"]("shell", "-c", NEEDS_REVIEW.format(pk=request_id))
        row = f'#open-requests tr[data-id="{request_id}"]'
        board.wait_for_selector(f"{row} button.confirm-button", timeout=10000)
        board.locator(row).focus()
        board.keyboard.press("c")
        board.wait_for_selector('#action-result[data-action="confirm_urgency"][data-ok="1"]', timeout=5000)
        board.wait_for_selector(f"{row} button.confirm-button", state="detached", timeout=5000)

        # Change: u opens the dialog; the change needs a reason and lands in the audit.
        board.locator(row).focus()
        board.keyboard.press("u")
        board.wait_for_selector("#change-urgency[open]")
        board.select_option("#change-urgency-level", "1")
        board.fill("#change-urgency-reason", "caller now says he is short of breath")
        board.click("#change-urgency-form button[type=submit]")
        board.wait_for_selector('#action-result[data-action="change_urgency"][data-ok="1"]', timeout=5000)
        overrides = context.new_page()
        overrides.goto(f"{shift_server['base_url']}/overrides/")
        text = overrides.text_content("#overrides-table")
        assert "confirmed classifier urgency" in text and "caller now says he is short of breath" in text
    finally:
        context.close()


def test_keyboard_moves_between_rows_and_focus_follows_the_request_through_live_updates(shift_server, browser):
    context, board = board_page(browser, shift_server)
    try:
        ids = [submit(context, shift_server, text) for text in ("Sore throat for three days", "Twisted ankle, can walk")]
        board.wait_for_selector(f'tr[data-id="{ids[-1]}"]', timeout=15000)
        board.locator("h1").click()
        board.keyboard.press("?")
        board.wait_for_selector("#shortcuts[open]")
        board.keyboard.press("Escape")
        board.wait_for_function("!document.getElementById('shortcuts').open")
        # j, j, k and the reading of the rows in one task of the page: a live update (a request classified or
        # finished) between two presses reorders the rows, and the selection rightly stays on its request.
        focused, rows = board.evaluate("""() => {
            for (const key of ["j", "j", "k"]) {
                document.activeElement.dispatchEvent(new KeyboardEvent("keydown", {key, bubbles: true, cancelable: true}));
            }
            const rows = [...document.querySelectorAll('#open-requests tr, #finished-requests tr')]
                .filter(tr => !tr.hidden).map(tr => Number(tr.dataset.id));
            return [Number(document.activeElement.dataset.id), rows];
        }""")
        assert focused == rows[0], (focused, rows)
        # Keep the focus on a request while it finishes and moves tables: it stays on the same request.
        target = ids[-1]
        board.evaluate(f"document.querySelector('tr[data-id=\"{target}\"]').focus()")
        board.wait_for_selector(f'#finished-requests tr[data-id="{target}"]', state="attached", timeout=60000)
        board.wait_for_timeout(1500)
        assert board.evaluate("Number(document.activeElement.dataset.id)") == target
        board.keyboard.press("Enter")
        board.wait_for_url(re.compile(rf".*/requests/{target}/$"))
    finally:
        context.close()


AXE_RUN = """async () => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}});
  return {passes: result.passes.map((p) => p.id),
          violations: result.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
                                                     nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" "))}))};
}"""


def test_every_page_passes_an_axe_core_audit_under_its_content_security_policy(shift_server, browser):
    assert AXE.exists(), f"{AXE} is missing: run npm ci --prefix tests/browser (make test-browser does)"
    context, board = board_page(browser, shift_server, enforce_csp=True)
    try:
        request_id = submit(context, shift_server, "My father collapsed and is not breathing")
        board.wait_for_selector(alert_box(request_id), timeout=20000)
        board.wait_for_selector("body[data-charts-at]", state="attached", timeout=15000)
        base = shift_server["base_url"]
        pages = {"board": board}
        policies = {}
        for name, path in (("request", f"/requests/{request_id}/"), ("intake", "/"), ("simulation", "/simulation/")):
            page = context.new_page()
            policies[name] = page.goto(f"{base}{path}").headers.get("content-security-policy", "")
            pages[name] = page
        pages["request"].wait_for_selector('#connection[data-state="live"]', timeout=15000)
        # Every page ran under a policy that allows no inline script, and it blocked nothing of ours.
        assert all("script-src 'self';" in policy for policy in policies.values()), policies
        blocked = {name: page.evaluate("window.__cspViolations || []") for name, page in pages.items()}
        assert not any(blocked.values()), blocked
        found = {}
        for name, page in pages.items():
            page.evaluate(AXE.read_text())  # through the debugger, as a tool: the pages' policy does not apply
            audit = page.evaluate(AXE_RUN)
            assert "color-contrast" in audit["passes"], (name, audit["passes"])  # the audit really checked the page
            found[name] = [v for v in audit["violations"] if v["impact"] in ("serious", "critical")]
            page.screenshot(path=str(OUTPUT / f"axe-{name}.png"), full_page=True)
        (OUTPUT / "axe-violations.json").write_text(json.dumps(found, indent=2))
        assert not any(found.values()), json.dumps(found, indent=2)
    finally:
        context.close()


def test_the_server_prints_its_address_plainly_after_its_start_up_output(shift_server):
    log = Path(shift_server["env"]["TRIAGE_VAR_DIR"]).parent / "server.log"
    address = f"Triage is ready: open {shift_server['base_url']}/"
    for _ in range(50):
        if address in log.read_text():
            break
        time.sleep(0.1)
    text = log.read_text()
    assert address in text
    start_up = text[:text.index(address)]
    assert "Loading the classifier's models" in start_up and "loading model" in start_up  # models first


SECOND_WORKER = """
from datetime import timedelta
from django.utils import timezone
from triage_site.dispatch.models import WorkerHeartbeat
beat, _ = WorkerHeartbeat.objects.update_or_create(worker_name="gpu-node-2", defaults={{"queue_order": [],
    "stats": {{"tokens_per_second": 42.5, "running": 3, "waiting": 1, "room": 12}}}})
WorkerHeartbeat.objects.filter(pk=beat.pk).update(updated_at=timezone.now() - timedelta(seconds={age}))
"""


def test_with_several_workers_the_board_lists_each_and_flags_a_silent_one(shift_server, browser):
    """docs/cluster.md: a second worker (here a heartbeat written as it would write it) joins the board's list;
    when it stops reporting, the list says so within two lease periods, without reloading the page."""
    context, board = board_page(browser, shift_server)
    try:
        assert board.locator("#workers").is_hidden()  # one worker: the single line says it all
        shift_server["manage"]("shell", "-c", SECOND_WORKER.format(age=0))
        board.wait_for_selector("#workers li >> text=gpu-node-2: alive", timeout=15000)
        assert board.locator("#workers li").count() == 2
        assert "42.5 tokens/s, 3 running, 1 waiting, room for 12" in board.inner_text("#workers")
        shift_server["manage"]("shell", "-c", SECOND_WORKER.format(age=120))
        board.wait_for_selector('#workers li[data-state="silent"] >> text=gpu-node-2: silent for', timeout=15000)
    finally:
        shift_server["manage"]("shell", "-c", "from triage_site.dispatch.models import WorkerHeartbeat; "
                               "WorkerHeartbeat.objects.filter(worker_name='gpu-node-2').delete()")
        context.close()
