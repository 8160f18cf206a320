# Driftwood — the two commands that matter: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENVS := .venvs
PY_STAMPS := $(VENVS)/airflow/.stamp $(VENVS)/mlflow/.stamp $(VENVS)/evidently/.stamp $(VENVS)/tools/.stamp

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

node_modules/.stamp: package.json package-lock.json tasks/package.json serving/package.json
	@echo "▶ installing npm packages"
	@# `npm install` (with the committed lock) rather than `npm ci`: registries that mirror only some
	@# platforms' optional packages (biome's per-OS binaries) leave them out of the lock, which npm ci refuses.
	npm install --ignore-scripts --no-audit --no-fund --loglevel=error
	scripts/native-deps.sh
	@touch $@

$(VENVS)/%/.stamp: requirements/%.lock
	@echo "▶ installing the $* venv from requirements/$*.lock"
	@command -v uv >/dev/null || python3 -m pip install -q uv
	uv venv -q --allow-existing --python 3.11 $(VENVS)/$*
	VIRTUAL_ENV=$(VENVS)/$* uv pip install -q -r $<
	@touch $@

install: system-deps node_modules/.stamp $(PY_STAMPS) build ## install npm packages and the Python venvs, build the TypeScript

system-deps: ## Debian packages the suites use (docker-compose, prometheus, alertmanager), if missing
	scripts/system-deps.sh

build: node_modules/.stamp ## compile the TypeScript workspaces
	npx tsc -b tasks serving
	npx vite build --config dashboard/vite.config.ts

lint: install ## biome, tsc, ruff
	npx biome check tasks/src serving/src dashboard tests bench
	$(VENVS)/airflow/bin/ruff check dags monitoring tests/python tests/monitoring tests/stack docker/offline bench python
	$(VENVS)/airflow/bin/ruff format --check dags monitoring tests/python tests/monitoring tests/stack docker/offline bench python

demo: install ## the whole loop on embedded defaults, data up to the current hour (ONCE=1 to exit after the sample prediction)
	ONCE=$(ONCE) scripts/demo.sh

test: install ## every suite: TypeScript (vitest) and Python (pytest), with the services they need
	scripts/test.sh

test-reliability: install ## the reliability suite at full size (kill -9, SIGTERM, overload, fuzzing, races, corrupt versions, erasure); prints goal vs measured
	rm -f .driftwood/test/reliability.jsonl
	DRIFTWOOD_RELIABILITY_SCALE=full npx vitest run tests/reliability; rc=$$?; node scripts/reliability-table.mjs || rc=1; exit $$rc

bench-features: install $(VENVS)/bench/.stamp ## feature build + transform vs pandas/scikit-learn (BENCH_CUSTOMERS, BENCH_EVENTS)
	npx tsc -p bench/features
	node --max-old-space-size=12000 .driftwood/bench-build/features/run.js

bench-engines: install ## the feature engines as hourly runs use them: backfill ingest, features, hourly runs, S3 copy (BENCH_CUSTOMERS, BENCH_HOURS)
	bash bench/features/engines.sh

bench-drift: install ## drift job time, peak RSS and decisions vs full Evidently, 100k and 1M rows x 30 features (docs/monitoring.md)
	$(VENVS)/evidently/bin/python bench/monitoring/drift_bench.py

bench-serving: install ## our API vs `mlflow models serve` vs a constant route (BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONCURRENCY), then scoring by id
	npx tsc -p bench/serving
	node .driftwood/bench-build/serving/run.js
	node .driftwood/bench-build/serving/by-id.js

bench-serving-by-id: install ## p50/p99 of POST /v1/predict/by-id on a simulated PostgreSQL warehouse (BENCH_CUSTOMERS, BENCH_HOURS, BENCH_IDS, BENCH_PG)
	npx tsc -b tasks serving && npx tsc -p bench/serving
	node .driftwood/bench-build/serving/by-id.js

bench-scoring: install ## batch scoring rows/s for 1M rows: Node engine, Spark engine (spark_udf), API /v1/predict/batch on one version (MLFLOW_TRACKING_URI, BENCH_MODEL, BENCH_ROWS, BENCH_SPARK_MASTER)
	npx tsc -b tasks serving
	node bench/scoring/run.mjs

bench-train: install $(VENVS)/bench/.stamp ## Driftwood's models vs scikit-learn and LightGBM on generated and churn data, log-batch vs one request per point (needs MLflow at MLFLOW_TRACKING_URI; BENCH_DATASET=churn: that contract's latest snapshot only)
	npx tsc -b tasks && npx tsc -p bench/train
	node .driftwood/bench-build/train/run.js $(if $(BENCH_DATASET),--dataset $(BENCH_DATASET))

lock: ## re-resolve the Python lock files from requirements/*.in
	for n in airflow mlflow evidently tools bench; do uv pip compile --python-version 3.11 --quiet requirements/$$n.in -o requirements/$$n.lock; done

airflow-up: install ## Airflow as a service (the Airflow home make demo uses): API server + UI, scheduler (LocalExecutor), DAG processor, triggerer; prints the login
	scripts/airflow-service.sh start

airflow-down: ## stop the Airflow service processes (all four)
	scripts/airflow-service.sh stop

.PHONY: airflow-up airflow-down

up: install ## the full local stack as processes: MLflow, Airflow (UI, scheduler, DAG processor, triggerer), the drift sidecar, the API and dashboard; prints URLs and logins
	scripts/up.sh

down: ## stop what `make up` started (API, drift sidecar, Airflow, MLflow)
	scripts/down.sh

.PHONY: up down

stack: system-deps ## the whole stack as containers (podman or Docker; compose, profile full), a first champion, then URLs and logins
	scripts/stack.sh up

stack-down: ## stop the container stack; its named volumes (runs, warehouse, champion) are kept
	scripts/stack.sh down

images: ## build the five images (offline stand-in bases where the pinned ones cannot be pulled); prints times and sizes
	scripts/container-engine.sh start >/dev/null && DOCKER_HOST=$$(scripts/container-engine.sh env | sed 's/^DOCKER_HOST=//') docker/build-images.sh

.PHONY: stack stack-down images

clean: ## stop services and remove build output and local state
	-scripts/mlflow.sh stop
	rm -rf tasks/dist serving/dist *.tsbuildinfo tasks/*.tsbuildinfo serving/*.tsbuildinfo .driftwood

.PHONY: help install system-deps build lint demo test test-reliability bench-features bench-engines bench-drift bench-scoring bench-serving bench-serving-by-id bench-train lock clean
