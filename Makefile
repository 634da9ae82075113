# The two commands a newcomer needs: `make demo` and `make test`. Each sets up its own virtualenv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: demo test check lint typecheck unit fast lock clean chromium postgres

PIP := $(BIN)/pip --quiet --disable-pip-version-check

# Everything from the locks, each file checked against its recorded hash; then this project, editable, built by the
# hatchling the dev lock pinned (no unhashed build dependencies fetched).
$(STAMP): requirements.lock requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install --require-hashes --no-deps -r requirements-dev.lock
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/rebates demo

test: lint typecheck unit

# The lane to run while working, in under a minute: lint, types and the tests that need no PostgreSQL, no Prefect
# server, no browser and no long simulated runs (markers set in tests/conftest.py and the slow modules). `make test`
# still runs everything.
check: lint typecheck fast

fast: $(STAMP)
	$(BIN)/pytest -n 2 -q -m "not postgres and not prefect and not integration and not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Both cores, a whole test file per worker (--dist loadfile): a file's tests share their fixtures and order.
unit: $(STAMP) chromium postgres
	$(BIN)/pytest -n 2 --dist loadfile

# The HTML report test renders in Debian's headless Chromium; install it when the machine lacks it.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the HTML report test"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-liberation >/dev/null; }

# The shared-state tests (REBATES_STATE_URL) start a throwaway PostgreSQL server, and fail without one; install
# Debian's when initdb is neither in `pg_config --bindir` nor in /usr/lib/postgresql/*/bin (where tests/postgres.py
# looks). As root, the tests run the server as the `postgres` user the package creates (initdb refuses root).
postgres:
	@{ command -v pg_config >/dev/null 2>&1 && [ -x "$$(pg_config --bindir)/initdb" ]; } \
		|| ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		echo "installing Debian's postgresql for the PostgreSQL tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }

# Re-resolve the ranges in pyproject.toml to the newest versions with uv (installed in a scratch venv) and record
# them with every file's hash: requirements.lock is what the flows need to run (a worker installs only this),
# requirements-dev.lock is that same set plus the test and lint tools (what `make` installs).
UV_COMPILE = .lock-venv/bin/uv pip compile pyproject.toml --upgrade --generate-hashes --python-version 3.11 \
	--custom-compile-command "make lock" --quiet
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --disable-pip-version-check uv
	$(UV_COMPILE) -o requirements.lock
	$(UV_COMPILE) --extra dev --constraint requirements.lock -o requirements-dev.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .lock-venv .mypy_cache .ruff_cache .pytest_cache build dist
