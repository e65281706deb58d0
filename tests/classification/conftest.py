"""Fixtures for the classifier tests (the model fixtures are in tests/conftest.py: intake's tests use them too)."""
import json

import pytest


@pytest.fixture
def write_jsonl(tmp_path):
    def write(rows, name="data.jsonl"):
        path = tmp_path / name
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        return path
    return write
