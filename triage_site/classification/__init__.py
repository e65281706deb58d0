"""Urgency and answer-length classification, as a library: text in, classification out.

It knows nothing of requests or the database. Its data (labelled requests, the trained head, the red-flag
rules) lives outside the package, in data/classifier/."""
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "classifier"
