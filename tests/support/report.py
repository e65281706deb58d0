"""Figures that reliability tests produce, written where docs/reliability.md quotes them from."""
import json

from benchmarks.launch import ROOT

REPORT_DIR = ROOT / "test-output"


def report(name, figures):
    REPORT_DIR.mkdir(exist_ok=True)
    (REPORT_DIR / f"reliability-{name}.json").write_text(json.dumps(figures, indent=2))
    print(f"{name}: {json.dumps(figures)}")
