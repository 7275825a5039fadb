# WARP Billing: the two commands a new machine needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WARP := $(VENV)/bin/warp
SAMPLE := build/sample
EVENTS ?= 200000
PERIOD ?= 2026-06

.PHONY: run test unit bench bench-reconcile sample clean venv bundles lint deploy-check system-deps system-deps-test

# The rating hot path (setup.py HOT_MODULES) is compiled with mypyc in place; when the compile
# is not possible the package stays pure Python (same behaviour, slower). A compiled module
# older than its source refuses to import (warp_billing/__init__.py), so rebuild with `make venv`.
HOT_SOURCES := setup.py shared/warp_billing/money.py shared/warp_billing/timeutil.py $(wildcard shared/warp_billing/rating/*.py)

venv: $(VENV)/.installed $(VENV)/.compiled

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# COMPILE=0 skips the mypyc build (pure Python; for work trees that edit the rating modules often).
COMPILE ?= 1

$(VENV)/.compiled: $(VENV)/.installed $(HOT_SOURCES)
	find shared -name '*.so' -delete
	if [ "$(COMPILE)" = "0" ]; then $(PY) -m pip install --quiet --no-deps -e . && touch $@ && exit 0; fi; \
	WARP_COMPILE=1 $(PY) -m pip install --quiet --no-build-isolation --no-deps -e . \
	    || { echo "warning: mypyc compile failed; warp_billing stays pure Python"; \
	         find shared -name '*.so' -delete; $(PY) -m pip install --quiet --no-deps -e .; }
	touch $@

## Debian packages: Pango for WeasyPrint (the invoice PDF), and for the tests poppler-utils (the
## PDF page as PNG) and chromium (the invoice HTML checked in a real headless browser). Idempotent:
## only missing packages are installed, and only where apt-get can (root).
PDF_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 fonts-liberation fonts-dejavu-core
TEST_PACKAGES := $(PDF_PACKAGES) poppler-utils chromium

system-deps:
	@$(call apt_install,$(PDF_PACKAGES))

system-deps-test:
	@$(call apt_install,$(TEST_PACKAGES))

define apt_install
missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
if [ -n "$$missing" ]; then echo "installing Debian packages:" $$missing; \
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; } \
  || echo "warning: could not install" $$missing "(invoice PDF / browser checks need them)"; fi
endef

## The main job on embedded defaults: a month of sample traffic for three customers, rated,
## then the month closed into invoices (JSON, HTML, PDF, journal) under build/sample/invoices.
run: venv system-deps
	mkdir -p $(dir $(SAMPLE))
	$(WARP) sample --out $(SAMPLE) --events $(EVENTS)
	$(WARP) rate $(foreach c,acme beta gamma,--plan $(SAMPLE)/$(c)-plan.yaml) \
	    --in $(SAMPLE)/usage.jsonl --out $(SAMPLE)/rated.jsonl \
	    --rejects $(SAMPLE)/rejects.jsonl --summary $(SAMPLE)/summary.json
	rm -rf $(SAMPLE)/invoices
	$(WARP) invoice $(foreach c,acme beta gamma,--plan $(SAMPLE)/$(c)-plan.yaml) \
	    --rated $(SAMPLE)/rated.jsonl --period $(PERIOD) \
	    --out-dir $(SAMPLE)/invoices --register $(SAMPLE)/invoices/register \
	    --seller $(SAMPLE)/seller.yaml
	@echo "The sample invoices are in $(SAMPLE)/invoices/ (JSON, HTML and PDF, journal beside):"
	@ls -1 $(SAMPLE)/invoices/*.json $(SAMPLE)/invoices/*.html $(SAMPLE)/invoices/*.pdf 2>/dev/null \
	    | grep -v '\.journal\.json$$' | sed 's/^/  /' || true

## Every test: unit, property, CLI, and the integration and end-to-end tests against the local
## stack (real redis-server, BigQuery/Firestore/Cloud Tasks stand-ins, functions under
## functions-framework), which this target installs, starts and always stops again.
test: venv system-deps-test
	$(MAKE) --no-print-directory stack-install
	@$(MAKE) --no-print-directory stack-up || { $(MAKE) --no-print-directory stack-down; exit 1; }
	@status=0; $(PY) -m pytest -q || status=$$?; $(MAKE) --no-print-directory stack-down; exit $$status

unit: venv
	$(PY) -m pytest -q tests/unit

## The lint and type gate (CI runs it before the tests): ruff (rules in pyproject.toml), the
## import-linter layer contracts, mypy (pydantic plugin; strict on money, rating, billing,
## charging). Each step says which one failed; all three run even when an earlier one fails.
lint: $(VENV)/.installed
	@status=0; \
	echo "lint: ruff"; $(VENV)/bin/ruff check --quiet . || { status=1; echo "lint: ruff FAILED (fix, or 'ruff check --fix' for the [*] ones)"; }; \
	echo "lint: import-linter (layers)"; $(VENV)/bin/lint-imports --no-logo || { status=1; echo "lint: import contracts BROKEN (see above)"; }; \
	echo "lint: mypy"; $(VENV)/bin/mypy || { status=1; echo "lint: mypy FAILED"; }; \
	if [ $$status = 0 ]; then echo "lint: all passed"; fi; exit $$status

## Benchmarks (not tests): figures go to BENCHMARKS.md by hand with the machine.
bench: venv
	$(PY) bench/rating_bench.py
	$(PY) bench/cycle_close_bench.py
	$(PY) bench/realtime_bench.py

# warp reconcile on RECON_ROWS a side (default 10M: about 4.4 GB of generated files in RECON_WORK)
RECON_ROWS ?= 10000000
RECON_WORK ?= build/recon-bench-$(RECON_ROWS)
bench-reconcile: venv
	$(PY) bench/reconcile_bench.py --rows $(RECON_ROWS) --work $(RECON_WORK) --reuse

## Deployable function folders (main.py + requirements.txt + warp_billing) for Terraform.
bundles: venv
	$(PY) tools/function_bundles.py

## What a `terraform plan` and the first deploy would find, offline (tools/deploy_check.py): every
## declared function's bundle builds and imports with its own requirements in a clean venv (cached
## under build/deploy-check/), terraform fmt, every file parses, the cross-references resolve.
deploy-check: venv
	$(PY) tools/deploy_check.py

clean:
	rm -rf build .pytest_cache
include stack.mk
