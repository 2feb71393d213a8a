# One Makefile for people and CI. Every target creates .venv from the pinned
# constraints (requirements.lock) when it is missing or older than them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test lint unasync format bench bench-quick bench-tools redis-server postgresql chromium lock clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev,dask]'
	touch $(STAMP)

# Loads the bundled demo sales when the store is empty, trains the demo
# products that have no active model, then serves on 127.0.0.1:8000.
# Without SALESCAST_ADMIN_TOKEN a random token is generated and printed.
run: $(STAMP)
	@token="$${SALESCAST_ADMIN_TOKEN:-$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(24))')}"; \
	echo "salescast admin token: $$token  (send as: Authorization: Bearer $$token)"; \
	export SALESCAST_ADMIN_TOKEN="$$token"; \
	echo "the salescast command is in $(BIN)/: run '. $(BIN)/activate' in another shell to use it"; \
	$(BIN)/salescast demo && exec $(BIN)/salescast serve

# The tests start and stop their own redis-server processes on free loopback
# ports (one server, a 6-node cluster, master + replica + 3 sentinels, a TLS
# server); this only makes sure the binaries are there.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server (Debian package)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
	@# Debian's package starts a system service on 6379; the tests never use it.
	@# The Cluster, Sentinel and TLS fixtures also need redis-cli and openssl.
	@command -v redis-cli >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 || { \
	  echo "installing redis-tools and openssl (Debian packages)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools openssl >/dev/null; }

# The tests run every store test on SQLite and on a PostgreSQL server they
# start themselves (initdb in a temp dir, a free loopback port); this only
# makes sure the binaries are there (/usr/lib/postgresql/<N>/bin or PATH).
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  echo "installing postgresql (Debian package)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
	@# Debian's package may start a system cluster on 5432; the tests never use it.

# The dashboard tests (tests/browser) drive Debian's chromium headless through
# Playwright for Python, pointed at /usr/bin/chromium: never a downloaded
# browser build (no `playwright install`).
chromium:
	@test -x /usr/bin/chromium || { \
	  echo "installing chromium (Debian package)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The sync face of the cache's control flow is generated from its asyncio
# source (src/salescast/cache/_async -> _sync); lint fails when it is stale.
unasync: $(STAMP)
	$(BIN)/python scripts/unasync.py

lint: $(STAMP)
	$(BIN)/python scripts/unasync.py --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The suite runs on TEST_WORKERS pytest-xdist workers: most tests wait on the
# servers they start (Redis, PostgreSQL, uvicorn), so three workers on two cores
# finish well before one. Each worker starts its own servers on free ports.
# `--dist loadscope` keeps a module's tests on one worker (its trained-model
# fixtures are built once). TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 3
test: $(STAMP) redis-server postgresql chromium lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope

# Long fault and fuzzing runs (tests marked chaos, deselected by make test):
# schemathesis in process and against a live server, SIGKILL during ingest and
# training. Prints the generated case counts; docs/reliability.md has the figures.
.PHONY: chaos
chaos: $(STAMP) redis-server postgresql
	$(BIN)/python -m pytest -m chaos

# Benchmarks live outside the test run; results go to bench/RESULTS.md and
# bench/charts/. They start their own redis-server on a free loopback port.
# The bench group (peer caches) comes from requirements-bench.lock;
# wrk (Debian) is installed when missing. bench-quick takes a few minutes.
BENCH_STAMP := $(VENV)/.bench-stamp

$(BENCH_STAMP): $(STAMP) pyproject.toml requirements-bench.lock
	$(BIN)/python -m pip install --quiet -c requirements.lock -c requirements-bench.lock -e '.[dev,dask,bench]'
	touch $(BENCH_STAMP)

bench-tools: redis-server postgresql
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing wrk (Debian package)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

bench: $(BENCH_STAMP) bench-tools
	$(BIN)/python bench/results.py

bench-quick: $(BENCH_STAMP) bench-tools
	$(BIN)/python bench/results.py --quick

# Rewrites requirements.lock from what is installed in .venv now.
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^salescast' > requirements.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build src/*.egg-info
