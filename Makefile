# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1

# The real stack used by the second half of `make test` (CI runs both on 127.0.0.1).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/14

.PHONY: run test test-embedded test-browser test-stack test-compose install worker celery web traffic clean

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $@

install: $(VENV)/.installed

# Embedded mode: SQLite, in-memory channel layer, eager Celery, worker in the web process.
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py create_dispatcher demo --password-file var/demo-password.txt
	$(PY) manage.py serve --host 127.0.0.1 --port 8000

test: test-embedded test-browser test-stack test-compose

test-embedded: install
	env -u DATABASE_URL -u REDIS_URL $(PY) -m pytest -m "not browser"

# Real headless Chromium (Debian's package); its own invocation, as Playwright's sync API needs it.
# axe-core (pinned in tests/browser/package-lock.json) audits every page in the browser tests.
AXE := tests/browser/node_modules/axe-core/axe.min.js
$(AXE): tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund --silent
	touch $(AXE)

test-browser: install $(AXE)
	env -u DATABASE_URL -u REDIS_URL TRIAGE_REQUIRE_BROWSER=1 $(PY) -m pytest -m browser tests/browser

# The test process runs without the connection pool: pytest-django's transactions and the many short-lived
# threads of async tests hold connections the pool would wait for. Processes the tests start use it.
test-stack: install
	DATABASE_URL=$(TEST_DATABASE_URL) DATABASE_CONN_MAX_AGE=0 DATABASE_POOL_MAX_SIZE=0 REDIS_URL=$(TEST_REDIS_URL) TRIAGE_REDIS_PREFIX=triage-test-$$$$ \
		$(PY) -m pytest -m "stack and not browser"

# docker-compose.yml must stay valid (no Docker engine needed for `config`).
test-compose:
	@if command -v docker-compose >/dev/null; then COMPOSE=docker-compose; \
	elif docker compose version >/dev/null 2>&1; then COMPOSE="docker compose"; \
	else echo "test-compose: neither docker-compose nor docker compose is installed" >&2; exit 1; fi; \
	DJANGO_SECRET_KEY=validate-only POSTGRES_PASSWORD=validate-only $$COMPOSE -f docker-compose.yml config -q && \
	DJANGO_SECRET_KEY=validate-only POSTGRES_PASSWORD=validate-only $$COMPOSE -f docker-compose.yml -f docker-compose.gpu.yml config -q && \
	echo "docker-compose.yml and the GPU override are valid"

# The full stack as separate processes (set DATABASE_URL and REDIS_URL first). On one machine the
# background processes run niced, one torch thread each, so that the web server answers callers first.
web: install
	$(PY) -m daphne -b 127.0.0.1 -p 8000 triage_site.asgi:application
celery: install
	OMP_NUM_THREADS=1 nice -n 10 $(PY) -m celery -A triage_site worker --loglevel=info --concurrency=2
worker: install
	nice -n 10 $(PY) -m inference_worker
traffic: install
	$(PY) manage.py generate_traffic --rate $${TRIAGE_TRAFFIC_RATE:-0.2} --seconds 0 --password-file var/demo-password.txt

clean:
	rm -rf $(VENV) var
