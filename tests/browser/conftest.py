"""A real server (`manage.py serve`: daphne + the inference worker with the tiny model) and a real
headless Chromium (Debian's package, driven by Playwright's Python API; no `playwright install`)."""
import os
from pathlib import Path

import pytest

from benchmarks.launch import ROOT, embedded_server
from benchmarks.chromium import CHROMIUM, CHROMIUM_ARGS

OUTPUT = ROOT / "test-output"


def pytest_collection_modifyitems(config, items):
    if Path(CHROMIUM).exists() or os.environ.get("TRIAGE_REQUIRE_BROWSER"):
        return  # where TRIAGE_REQUIRE_BROWSER is set (CI) a missing browser fails the tests instead
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is not installed (apt-get install chromium); "
                                   "set TRIAGE_REQUIRE_BROWSER=1 to make this a failure")
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


def new_context(browser, *, enforce_csp=False, **options):
    """A browser context for a test. Playwright polls `wait_for_function` by evaluating its predicate in the page,
    which the app's Content-Security-Policy (no eval) refuses, so a test's context bypasses the policy; the one test
    that checks the policy (test_shift.py, the axe-core audit) enforces it and waits only on selectors."""
    return browser.new_context(bypass_csp=not enforce_csp, **options)


@pytest.fixture(scope="module")
def triage_server(tmp_path_factory):
    extra_env = {
        "TRIAGE_MODEL_CACHE": str(ROOT / "var" / "models"),
        "TRIAGE_INFERENCE_MODEL": "tiny",
        # Long enough (seconds with the tiny model) that the page sees the answer stream while running.
        "TRIAGE_MAX_ANSWER_TOKENS": os.environ.get("TRIAGE_BROWSER_ANSWER_TOKENS", "1500"),
    }
    with embedded_server(tmp_path_factory.mktemp("browser-server"), "browser", extra_env=extra_env) as server:
        yield server


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
