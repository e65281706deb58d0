"""The dispatcher's pages in real headless Chromium against a real server."""
import contextlib
import re
import time

import pytest

from tests.browser.conftest import new_context

pytestmark = pytest.mark.browser

# Records what each page's websockets deliver, and lets a test cut them, without touching our scripts.
SOCKET_SPY = """
(() => {
  const Original = window.WebSocket;
  window.__sockets = [];
  window.__messages = [];
  window.WebSocket = function (...args) {
    const socket = new Original(...args);
    window.__sockets.push(socket);
    socket.addEventListener("message", (event) => {
      try { const m = JSON.parse(event.data); window.__messages.push({type: m.type, at: Date.now(), length: (m.text || "").length}); }
      catch (error) {}
    });
    return socket;
  };
  window.WebSocket.prototype = Original.prototype;
  Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
})();
"""

# Samples the answer's length and the board row's status as they change.
WATCH_ANSWER = """
() => {
  window.__answerLengths = [];
  const answer = document.getElementById("answer");
  const card = () => document.querySelector("#protocol-cards .protocol-card") !== null;
  const record = () => window.__answerLengths.push([answer.textContent.length, document.getElementById("request").dataset.status, card()]);
  new MutationObserver(record).observe(answer, {childList: true, characterData: true, subtree: true});
  record();
}
"""

WATCH_ROW = """
(id) => {
  window.__statuses = window.__statuses || [];
  const seen = () => {
    const row = document.querySelector(`tr[data-id="${id}"]`);
    const status = row ? row.dataset.status : null;
    if (status && window.__statuses[window.__statuses.length - 1] !== status) window.__statuses.push(status);
  };
  new MutationObserver(seen).observe(document.querySelector("main"), {childList: true, subtree: true, attributes: true});
  seen();
}
"""

CALLER_TEXT = 'My husband collapsed and is not breathing <img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def sign_in(page, server):
    page.goto(f"{server['base_url']}/dispatch/")
    assert "/login/" in page.url  # anonymous: sent to sign in
    page.fill("#id_username", server["username"])
    page.fill("#id_password", server["password"])
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r".*/dispatch/$"))


@contextlib.contextmanager
def live_board(browser, server, height):
    """A signed-in board page whose websockets SOCKET_SPY records, once it is live; closes its context after."""
    context = new_context(browser, viewport={"width": 1400, "height": height})
    context.add_init_script(SOCKET_SPY)
    try:
        board = context.new_page()
        sign_in(board, server)
        board.wait_for_selector('#connection[data-state="live"]', timeout=15000)
        yield context, board
    finally:
        context.close()


def test_request_appears_on_the_board_moves_and_streams_its_answer(triage_server, browser, screenshot_dir):
    with live_board(browser, triage_server, height=1100) as (context, board):
        board.wait_for_function("document.body.dataset.chartsAt !== undefined", timeout=15000)
        board.click("#sound-toggle")  # the dispatcher turns sound on (a user gesture)
        assert board.get_attribute("#sound-toggle", "aria-pressed") == "true"

        intake = context.new_page()
        intake.goto(f"{triage_server['base_url']}/")
        intake.fill("#id_text", CALLER_TEXT)
        if intake.locator("#id_location").count():
            intake.fill("#id_location", "4 Elm Road <b>flat 2</b>")
        intake.click("main button[type=submit]")
        intake.wait_for_url(re.compile(r".*/requests/\d+/$"))
        request_id = int(re.search(r"/requests/(\d+)/", intake.url).group(1))
        intake.evaluate(WATCH_ANSWER)

        # The board shows the new request live, without a reload, and it moves through its states.
        board.evaluate(WATCH_ROW, request_id)
        board.wait_for_selector(f'tr[data-id="{request_id}"]', state="attached", timeout=15000)
        board.wait_for_selector(f'#announcements .announcement[data-id="{request_id}"]', timeout=15000)
        board.screenshot(path=str(screenshot_dir / "board-urgent-arrival.png"), full_page=True)

        # The request page streams the answer while it is being written.
        intake.wait_for_selector('#request[data-status="done"]', timeout=120000)
        lengths = intake.evaluate("window.__answerLengths")
        # The protocol card was on screen before the first token of the answer, and stays.
        assert all(card for length, _, card in lengths if length > 0), lengths[:5]
        card_ids = intake.eval_on_selector_all("#protocol-cards .protocol-card", "cards => cards.map(c => c.dataset.cardId)")
        assert "cpr_adult" in card_ids, card_ids
        assert len(intake.locator("#protocol-cards .protocol-card ol.steps li").all()) >= 4
        assert intake.locator("#protocol-cards .send-now").count() >= 1
        deltas = [m for m in intake.evaluate("window.__messages") if m["type"] == "answer.delta"]
        assert deltas, "no answer.delta reached the request page"
        while_running = [length for length, status, _ in lengths if status != "done" and length > 0]
        assert while_running, f"the answer only appeared once the request was done: {lengths[:20]}"
        final = intake.text_content("#answer")
        assert final.strip()
        assert len(set(length for length, _, _ in lengths if length)) >= 2 or len(deltas) >= 2
        timeline = intake.locator("#timeline li.reached").all_text_contents()
        assert [item.split(":")[0] for item in timeline] == ["Received", "Classified", "Queued", "First token", "Done"]
        assert intake.text_content("#reasoning").strip(), "the classifier's reasoning is shown"
        intake.screenshot(path=str(screenshot_dir / "request-done.png"), full_page=True)

        board.wait_for_selector(f'#finished-requests tr[data-id="{request_id}"][data-status="done"]', timeout=15000)
        statuses = board.evaluate("window.__statuses")
        assert statuses[-1] == "done" and len(statuses) >= 2, statuses
        order = ["received", "classifying", "queued", "running", "done"]
        assert statuses == sorted(statuses, key=order.index), statuses

        # Caller text is shown as text everywhere, never as markup.
        for page in (board, intake):
            assert page.evaluate("window.__xss") is None
            assert page.locator("main img").count() == 0
            assert page.locator("main script").count() == 0
        assert "not breathing <img" in intake.text_content("#request-text")
        row_text = board.text_content(f'#finished-requests tr[data-id="{request_id}"] td.text')
        assert "<script>" in row_text
        assert "Card: " in row_text and "CPR" in row_text, row_text  # the board row names the card
        board.screenshot(path=str(screenshot_dir / "board.png"), full_page=True)


def test_board_reconnects_by_itself_and_catches_up(triage_server, browser, screenshot_dir):
    with live_board(browser, triage_server, height=1000) as (context, board):
        # Cut the connection and submit a request while the page is disconnected.
        board.evaluate("window.__sockets.forEach((s) => s.close())")
        board.wait_for_function("window.__sockets.length >= 2", timeout=10000)
        intake = context.new_page()
        intake.goto(f"{triage_server['base_url']}/")
        intake.fill("#id_text", "Sprained ankle after football, can walk")
        intake.click("main button[type=submit]")
        intake.wait_for_url(re.compile(r".*/requests/\d+/$"))
        request_id = int(re.search(r"/requests/(\d+)/", intake.url).group(1))
        started = time.monotonic()
        board.wait_for_selector(f'tr[data-id="{request_id}"]', state="attached", timeout=5000)
        assert time.monotonic() - started < 2.5
        board.wait_for_selector('#connection[data-state="live"]', timeout=5000)
        board.screenshot(path=str(screenshot_dir / "board-after-reconnect.png"), full_page=True)


def test_anonymous_browser_sees_nothing(triage_server, browser):
    context = new_context(browser)
    try:
        page = context.new_page()
        for path in ("/dispatch/", "/", "/requests/1/"):
            page.goto(f"{triage_server['base_url']}{path}")
            assert "/login/" in page.url
        refused = page.evaluate("""(url) => new Promise((resolve) => {
            const socket = new WebSocket(url);
            socket.onopen = () => resolve("open");
            socket.onclose = (event) => resolve("closed " + event.code);
        })""", triage_server["base_url"].replace("http", "ws") + "/ws/board/")
        assert refused.startswith("closed"), refused
    finally:
        context.close()


ROWS_PER_ID = """() => {
    const counts = {};
    document.querySelectorAll('#open-requests tr').forEach((tr) => { counts[tr.dataset.id] = (counts[tr.dataset.id] || 0) + 1; });
    return counts;
}"""


def test_a_board_opened_while_requests_are_open_shows_each_once(triage_server, browser):
    """The page is rendered with the open rows; the live board must replace them, not add a second copy,
    and a finished request must leave the open table."""
    context = new_context(browser, viewport={"width": 1400, "height": 1000})
    try:
        intake = context.new_page()
        sign_in(intake, triage_server)
        ids = []
        for text in ("Fell off a bike, grazed knee, wants advice", "Sore throat for two days"):
            intake.goto(f"{triage_server['base_url']}/")
            intake.fill("#id_text", text)
            intake.click("main button[type=submit]")
            intake.wait_for_url(re.compile(r".*/requests/\d+/$"))
            ids.append(re.search(r"/requests/(\d+)/", intake.url).group(1))
        board = context.new_page()
        board.goto(f"{triage_server['base_url']}/dispatch/")
        server_rendered = board.evaluate(ROWS_PER_ID)
        assert any(request_id in server_rendered for request_id in ids), server_rendered  # the case in question
        board.wait_for_selector('#connection[data-state="live"]', timeout=15000)
        board.wait_for_timeout(500)  # a few live updates
        counts = board.evaluate(ROWS_PER_ID)
        assert all(count == 1 for count in counts.values()), counts
        assert board.text_content("#open-count") == str(len(counts))
        for request_id in ids:
            board.wait_for_selector(f'#finished-requests tr[data-id="{request_id}"]', state="attached", timeout=120000)
        board.wait_for_function(f"!document.querySelector('#open-requests tr[data-id=\"{ids[-1]}\"]')", timeout=10000)
        assert all(request_id not in board.evaluate(ROWS_PER_ID) for request_id in ids)
    finally:
        context.close()
