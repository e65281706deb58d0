import pytest

from benchmarks.launch import FULL_STACK


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="fault tests need the real PostgreSQL and Redis (DATABASE_URL and REDIS_URL)")
    for item in items:
        if "tests/reliability/" in str(item.fspath).replace("\\", "/") and not FULL_STACK:
            item.add_marker(skip)
