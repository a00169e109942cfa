# wijkmatch — developer entry points. `make test` and `make demo` are all a newcomer needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: venv browser promtool test test-fast lint format demo up schemas bench bench-components bench-intake bench-solver bench-stability bench-matcher bench-simulate bench-continuity algorithm-register chaos clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# The review page tests drive Debian's chromium (Playwright cannot download a browser here); installed once.
browser:
	@test -x /usr/bin/chromium || { \
		echo "installing Debian's chromium for the review page tests"; \
		SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }

# promtool checks and unit-tests the alert rules (tests/unit/deploy/test_alert_rules.py): unpacked from
# Debian's prometheus package into the venv (nothing installed system-wide, no server started).
PROMTOOL := $(VENV)/bin/promtool
$(PROMTOOL): | $(STAMP)
	@echo "unpacking promtool from Debian's prometheus package into $(VENV)/bin"
	@tmp=$$(mktemp -d) && chmod 755 $$tmp && cd $$tmp && \
		{ apt-get download prometheus >/dev/null 2>&1 || { \
			SUDO=$$(test "$$(id -u)" = 0 || echo sudo); $$SUDO apt-get update -q >/dev/null && apt-get download prometheus; }; } && \
		dpkg-deb -x prometheus_*.deb unpacked && cp unpacked/usr/bin/promtool $(CURDIR)/$(PROMTOOL) && \
		cd / && rm -rf $$tmp

promtool: $(PROMTOOL)

test: $(STAMP) browser $(PROMTOOL)
	$(PY) -m pytest -q

test-fast: $(STAMP) $(PROMTOOL)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

schemas: $(STAMP)
	$(VENV)/bin/wijkmatch schemas export

demo: $(STAMP)
	$(VENV)/bin/wijkmatch demo

up: $(STAMP)
	$(VENV)/bin/wijkmatch up

bench: bench-components bench-intake bench-solver bench-matcher

bench-components: $(STAMP)
	$(PY) -m bench.components

bench-intake: $(STAMP)
	$(PY) -m bench.intake

bench-solver: $(STAMP)
	$(PY) -m bench.solver

# Issue 15: warm starts and proposal churn over consecutive rounds, cold vs warm (docs/solver.md).
bench-stability: $(STAMP)
	$(PY) -m bench.stability --rounds 20 --change 0.01-0.05 --time-limit 10
	$(PY) -m bench.stability --rounds 10 --change 0.02 --time-limit 5 --deterministic

bench-matcher: $(STAMP)
	$(PY) -m bench.matcher --sweep 1,2,5,10,20

# A simulated year (5,000 households x 2,000 homes) per policy against hindsight (docs/lab.md).
bench-simulate: $(STAMP)
	$(PY) -m bench.simulate

# Issue 16: what continuity of care in the solver's fit would change (bench/results/continuity.json).
bench-continuity: $(STAMP)
	$(PY) -m bench.continuity

# Regenerates the figures in docs/algorithm-register.md from bench/results/simulate.json (bench-simulate
# does it too).
algorithm-register: $(STAMP)
	$(PY) -m lab.register

# Fault injection: the pipeline as processes under SIGKILLs and PostgreSQL restarts, then an anomaly count
# (docs/benchmarks.md, "Fault injection"); writes bench/results/chaos.json, exits 1 on any anomaly.
chaos: $(STAMP)
	$(PY) -m bench.chaos

clean:
	rm -rf .wijkmatch .pytest_cache lab-results
