"""Time from pressing "submit" to the protocol card on screen, in headless Chromium, embedded mode.

    .venv/bin/python benchmarks/card_latency.py --requests 20 [--model smollm2] [--json var/bench-card-latency.json]

Starts `manage.py serve` (daphne, eager classification, the embedded worker with --model) on a fresh SQLite
file, signs in, and for each request fills the intake form, clicks submit and waits until the request page
shows a `.protocol-card`. Prints p50/p95/max and writes JSON. Target: p95 under 1 s."""
import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import launch  # noqa: E402  (after the path insert)
from scheduler.metrics import percentile  # noqa: E402
from benchmarks.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

CALLS = [
    "my dad just collapsed in the kitchen and he isn't breathing, please hurry",
    "she's choking on a piece of meat and can't get any air",
    "he cut his arm on a window and blood is spurting everywhere",
    "my wife's face has dropped on one side and she can't lift her arm",
    "crushing chest pain for 20 minutes, sweaty and grey, 64 years old",
    "my son got stung by a wasp, his lips are swelling and he's wheezing",
    "I need a repeat prescription for my blood pressure tablets",
    "sore throat and a runny nose since yesterday, what should I take",
    "my toddler is having a fit, shaking all over, it's been 4 minutes",
    "the baby is coming now, I can see the head",
]


def measure(server, requests):
    from playwright.sync_api import sync_playwright

    seconds = []
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = chromium.new_page()
        page.goto(f"{server['base_url']}/dispatch/")
        page.fill("#id_username", server["username"])
        page.fill("#id_password", server["password"])
        page.click("main button[type=submit]")
        page.wait_for_url("**/dispatch/")
        for number in range(requests):
            page.goto(f"{server['base_url']}/")
            page.fill("#id_text", CALLS[number % len(CALLS)])
            started = time.perf_counter()
            page.click("main button[type=submit]")
            page.wait_for_selector("#protocol-cards .protocol-card", timeout=30000)
            seconds.append(time.perf_counter() - started)
        chromium.close()
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--model", default="smollm2", help="the embedded worker's model (default: %(default)s)")
    parser.add_argument("--json", default=str(ROOT / "var" / "bench-card-latency.json"))
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 500:
        parser.error("--requests must be 1..500")
    extra_env = {"TRIAGE_INFERENCE_MODEL": args.model, "TRIAGE_MODEL_CACHE": str(ROOT / "var" / "models")}
    with tempfile.TemporaryDirectory() as tmp, \
            launch.embedded_server(Path(tmp), "bench", extra_env=extra_env, show_log=False) as server:
        seconds = measure(server, args.requests)
    result = {"date": date.today().isoformat(), "requests": args.requests, "model": args.model,
              "p50_s": round(percentile(sorted(seconds), 50), 3), "p95_s": round(percentile(sorted(seconds), 95), 3),
              "max_s": round(max(seconds), 3), "seconds": [round(s, 3) for s in seconds], "target_p95_s": 1.0}
    print(f"{'requests':>8} {'p50 s':>8} {'p95 s':>8} {'max s':>8}")
    print(f"{args.requests:>8} {result['p50_s']:>8.3f} {result['p95_s']:>8.3f} {result['max_s']:>8.3f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
