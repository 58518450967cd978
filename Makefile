# Kiln: `make run` starts the server with a demo workspace; `make test` runs every test suite.
SHELL := /bin/bash
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 5000
KILN_HOME ?= $(CURDIR)/.kiln-demo
export PIP_ROOT_USER_ACTION := ignore
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test build release swift-test compat-test deps deps-test bench bench-parquet bench-delta bench-sql bench-jobs clean

BINDIR ?= /usr/local/bin
# The Swift runtime and Foundation linked into the binary: every `kiln` command starts in ~10 ms instead of ~15.
RELEASE = swift build -c release --product kiln --static-swift-stdlib

## Install missing system packages, build an optimized kiln, put it on the PATH, and start the server on an embedded
## store with a demo workspace.
run: deps
	@test -x .build/release/kiln || echo "Building an optimized kiln: the first build takes about 10 minutes on 2 cores, later ones a minute or two."
	$(RELEASE)
	@$(PYTHON) -m pip install -q ./python 2>/dev/null && echo "Python client installed: import kiln_client" || echo "Could not pip install ./python (the kiln_client package); install it by hand to use it"
	@if ln -sf $(CURDIR)/.build/release/kiln $(BINDIR)/kiln 2>/dev/null; then echo "kiln is on the PATH: $(BINDIR)/kiln -> .build/release/kiln"; \
	 else echo "Could not link $(BINDIR)/kiln; to use the README's kiln commands, type: export PATH=$(CURDIR)/.build/release:\$$PATH"; fi
	@echo "Starting Kiln on http://$(HOST):$(PORT) with home $(KILN_HOME) (admin token in $(KILN_HOME)/admin.token)"
	.build/release/kiln server --host $(HOST) --port $(PORT) --home $(KILN_HOME) --demo

## Run the Swift tests and the compatibility suites with the official Python clients; fails if either fails.
test: deps-test build
	swift test
	$(PYTHON) -m pip install -q -r tests/compat/requirements.txt
	$(PYTHON) -m pip install -q ./python
	$(PYTHON) -m pytest tests/compat -q -p no:cacheprovider

build:
	swift build --build-tests

release:
	$(RELEASE)

deps:
	@scripts/install-deps.sh build

deps-test:
	@scripts/install-deps.sh test

## Side-by-side benchmark against mlflow server (see bench/README.md).
bench: release
	$(PYTHON) -m pip install -q -r bench/requirements.txt
	$(PYTHON) bench/run_tracking_bench.py --kiln .build/release/kiln

## Parquet read/write against pyarrow, 5M rows (see bench/README.md).
bench-parquet: release
	$(PYTHON) -m pip install -q -r bench/requirements.txt
	$(PYTHON) bench/parquet_bench.py --kiln .build/release/kiln

## Delta tables against delta-rs, 5M rows (see bench/README.md).
bench-delta: release
	$(PYTHON) -m pip install -q -r bench/requirements.txt
	$(PYTHON) bench/delta_bench.py --kiln .build/release/kiln

## SQL against DuckDB and pandas: TPC-H-shaped Q1/Q3/Q6 at SF1, a 10M-row GROUP BY, a 1M x 1M join.
bench-sql: release
	$(PYTHON) -m pip install -q -r bench/requirements.txt
	$(PYTHON) bench/sql_bench.py --kiln .build/release/kiln

## Jobs: a 1,000-task DAG's throughput and task start latency, native and Python (see bench/README.md).
bench-jobs: release
	$(PYTHON) bench/jobs_bench.py --kiln .build/release/kiln

clean:
	rm -rf .build .kiln-demo
