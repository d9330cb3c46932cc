# Two commands for a fresh machine: `make up` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: up down status test unit bench bench-parts venv infra topics logs prereqs tools

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

## What `make up` needs: python3-venv, Java 17 and Maven (apt-get, only when a command is missing), Go.
prereqs:
	deploy/local/prereqs.sh up

## What `make test` needs on top: Debian's chromium (apt-get when missing), and kustomize and promtool
## built once from the Go module proxy into ~/.cache/congdoan. Quick when all is there.
tools:
	deploy/local/prereqs.sh test

venv: $(STAMP)

infra: prereqs venv
	deploy/local/infra.sh up

topics: infra
	$(PY) -m platformkit.run topics

## The platform locally: infrastructure, every service, a demo province, printed URLs.
up: topics
	deploy/local/platform.sh up

down:
	-deploy/local/platform.sh down
	deploy/local/infra.sh down

status:
	deploy/local/infra.sh status; deploy/local/platform.sh status

logs:
	deploy/local/infra.sh logs

## Every test, against the real broker and database (started if needed). `infra.sh env` names the
## local store's PostgreSQL (FERRETDB_POSTGRESQL_URL, for platformkit/store_prep.py), if it runs.
test: tools infra
	eval "$$(deploy/local/infra.sh env)" && $(PY) -m pytest -q $(PYTEST_ARGS)

## Pure unit tests only (no broker, no database).
unit: venv
	$(PY) -m pytest -q tests/unit

## The live platform at two province sizes on the same store, side by side (bench/province_bench.py,
## results appended to docs/benchmarks.md): each size is loaded once by synthetic/load.py under its own
## DB_PREFIX/TOPIC_PREFIX (pv<members>s<seed>) and reused by later runs. BENCH_SIZES=2000,50000 for a quick run.
BENCH_SIZES ?= 2000,2500000
bench: infra
	eval "$$(deploy/local/infra.sh env)" && $(PY) -m bench.province_bench --sizes $(BENCH_SIZES) $(PROVINCE_BENCH_ARGS)

## The component benchmarks with ratios against baselines measured in the same run: the projector;
## HTTP rps/latency per service against its /healthz (vegeta, built once into ~/.cache/congdoan);
## end-to-end freshness of the reporting views against the write and relay latency; rebuild, heavy
## reads, batches.
bench-parts: infra
	$(PY) -m bench.projector_bench $(BENCH_ARGS)
	$(PY) -m bench.http_bench $(HTTP_BENCH_ARGS)
	$(PY) -m bench.freshness_bench $(FRESHNESS_BENCH_ARGS)
	$(PY) -m bench.rebuild_bench $(REBUILD_BENCH_ARGS)
	$(PY) -m bench.heavy_read_bench $(HEAVY_BENCH_ARGS)
	$(PY) -m bench.batch_bench $(BATCH_BENCH_ARGS)
