# sotag: the two commands a new user needs are `make demo` and `make test`; `make help` lists every target with the
# variables it takes (the [VAR ...] after a target's `## `) and what it does. Docs: docs/ (make docs builds the site).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Only what the user sets is passed on: every default is written once, in sotag's settings (`sotag config` prints them
# with their sources; a sotag.toml here or SOTAG_* variables set them too).
# The questions: one or several files or folders, space-separated (DATA="questions.parquet extra/"); none: the default.
DATA ?=
# Extra flags for the sotag command a target runs (ARGS="--top-n-tags 200"), and for pytest (PYTEST_ARGS="-k gate").
ARGS ?=
PYTEST_ARGS ?=
# The MLflow UI's port (make ui, make tracking-server) and the Streamlit demo's (make app): not sotag settings.
PORT ?= 5000
APP_PORT ?= 8501
# sotag serve's port (serve.port, 5001), sotag gateway's (gateway.port, 8000) and its worker processes (gateway.workers,
# one per core), the drift schedule (drift.cron), a model URI (models:/stackoverflow-tagger/3, runs:/…, a folder).
SERVE_PORT ?=
GATEWAY_PORT ?=
WORKERS ?=
CRON ?=
MODEL ?=
# make score: the input (file or folder) and the output folder.
IN ?=
OUT ?=
# make docs: where the site is built (make test builds it into a temporary folder).
DOCS_SITE ?= site
# make bench-batch: how many questions (the data replicated; bench.batch reads it from the environment).
BENCH_BATCH_ROWS ?=
# make observe: Prometheus' port on 127.0.0.1 (observe.port, 9090); it scrapes the gateway at GATEWAY_PORT (gateway.port).
PROM_PORT ?=
DATA_ARG := $(if $(DATA),--data $(DATA),)
# Airflow (make airflow): its own virtualenv (never sotag's: Airflow caps FastAPI), its state under this folder, the
# DAGs in dags/ (they run .venv/bin/sotag). AIRFLOW_PORT: the api-server's (the UI's) port, on 127.0.0.1.
AIRFLOW_VENV := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed
AIRFLOW_PORT ?= 8080
AIRFLOW_DIR ?= $(CURDIR)/.airflow
# The tracking server's port only when the user set PORT (server.port's default is sotag's).
PORT_ARG := $(if $(filter command line environment,$(origin PORT)),--port $(PORT),)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)
# $(call sotag_coded,ARGS): `.venv/bin/sotag ARGS`, shown as make shows a command. GNU make exits 2 whenever a
# recipe fails, whatever the command's own code (promote 3 = kept, drift 4 = alert): say the code and what carries it.
sotag_coded = @echo '$(BIN)/sotag $(1)'; $(BIN)/sotag $(1) || { code=$$?; echo "make $@: sotag $@ exited $$code; \
	make itself exits 2, so cron and CI run .venv/bin/sotag $@ (docs/operations.md: exit codes)" >&2; exit $$code; }

.PHONY: help config setup demo train compare evaluate promote rollback status retrain tracking-server tracking-server-sandbox \
	test test-unit test-dags docs airflow airflow-setup system-deps lint format ui bench-quality bench-infer bench-train bench-registry bench-serve bench-sbert bench-drift bench-batch bench-faults bench-loop score serve gateway drift schedule app observe clean

help:  ## list the targets, the variables each takes and what each does
	@echo "make TARGET [VAR=value ...]: the variables are described at the Makefile's top; sotag's settings: make config"
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (\[([^]]*)\] )?(.*)/\1\t\3\t\4/' \
		| awk -F'\t' '{ printf "  %-24s %-32s %s\n", $$1, $$2, $$3 }'

config: setup  ## [ARGS] every setting, its value and where it came from: make config ARGS="train --top-n-tags 200"
	$(BIN)/sotag config $(ARGS)

setup: $(STAMP)  ## the virtualenv .venv with the pinned packages and sotag (editable)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: setup  ## [DATA] train the default configuration on DATA (or the shared data), register it, promote it, say where to look
	$(BIN)/sotag train $(DATA_ARG)
	$(BIN)/sotag promote $(DATA_ARG) || test $$? -eq 3
	@echo "next:  make ui (runs, models) · make serve (/invocations) · make gateway + make app (demo) · make drift"

train: setup  ## [DATA ARGS] train one configuration, log it, register it as @challenger
	$(BIN)/sotag train $(DATA_ARG) $(ARGS)

compare: setup  ## [DATA ARGS] compare the vectorizers (bow, tfidf, sbert, ensemble) as nested runs
	$(BIN)/sotag compare $(DATA_ARG) $(ARGS)

evaluate: setup  ## [DATA MODEL ARGS] any model on any questions file: make evaluate DATA=export.csv [MODEL=models:/stackoverflow-tagger/3] [ARGS="--start 2024-01-01"]
	$(call sotag_coded,evaluate $(DATA_ARG) $(if $(MODEL),--model-uri "$(MODEL)",) $(ARGS))

promote: setup  ## [DATA ARGS] judge @challenger against @champion on the same window; exit 0 promoted, 3 kept
	$(call sotag_coded,promote $(DATA_ARG) $(ARGS))

rollback: setup  ## [ARGS] put @champion back on the previous champion
	$(BIN)/sotag rollback $(ARGS)

status: setup  ## [ARGS] versions, aliases, metrics and promotion history
	$(BIN)/sotag status $(ARGS)

retrain: setup  ## [DATA ARGS] the weekly job: newest window → train → register → promote if better (exit 0/3)
	$(call sotag_coded,retrain $(DATA_ARG) $(ARGS))

serve: setup  ## [SERVE_PORT MODEL ARGS] mlflow models serve on models:/stackoverflow-tagger@champion (/invocations) on 127.0.0.1:SERVE_PORT (5001)
	$(BIN)/sotag serve $(if $(SERVE_PORT),--port $(SERVE_PORT),) $(if $(MODEL),--model-uri "$(MODEL)",) $(ARGS)

gateway: setup  ## [GATEWAY_PORT WORKERS MODEL ARGS] the gateway API on 127.0.0.1:GATEWAY_PORT (8000; docs at /docs), WORKERS processes (one per core)
	$(BIN)/sotag gateway $(if $(GATEWAY_PORT),--port $(GATEWAY_PORT),) $(if $(WORKERS),--workers $(WORKERS),) $(if $(MODEL),--model-uri "$(MODEL)",) $(ARGS)

drift: setup  ## [DATA ARGS] monthly drift job (default: the newest complete month vs each family's baseline: docs/monitoring.md); exit 4 on alert
	$(call sotag_coded,drift $(DATA_ARG) $(ARGS))

schedule: setup  ## [CRON DATA ARGS] run the drift job on CRON (default: 06:00 UTC on the 1st of each month); stays up
	$(BIN)/sotag schedule $(if $(CRON),--cron "$(CRON)",) $(DATA_ARG) $(ARGS)

observe: setup system-deps  ## [PROM_PORT GATEWAY_PORT ARGS] Prometheus on 127.0.0.1:PROM_PORT (9090) scraping the gateway (GATEWAY_PORT), with sotag's alert rules; data in <home>/observe
	$(BIN)/python -m sotag.monitoring.observe $(if $(PROM_PORT),--port $(PROM_PORT),) $(if $(GATEWAY_PORT),--gateway-port $(GATEWAY_PORT),) $(ARGS)

app: setup  ## [APP_PORT GATEWAY_PORT] the Streamlit demo on 127.0.0.1:APP_PORT (Ask needs `make gateway`; GATEWAY_PORT= finds it elsewhere)
	$(if $(GATEWAY_PORT),SOTAG_API_URL=http://127.0.0.1:$(GATEWAY_PORT),) $(BIN)/streamlit run serving/streamlit_app.py --server.headless true --server.address 127.0.0.1 \
		--server.port $(APP_PORT) --browser.gatherUsageStats false

tracking-server: setup  ## [PORT ARGS] mlflow server on PostgreSQL + S3 from SOTAG_BACKEND_STORE_URI / SOTAG_ARTIFACTS_DESTINATION
	$(BIN)/python -m sotag.mlruns_config.server $(PORT_ARG) $(ARGS)

tracking-server-sandbox: setup  ## [PORT ARGS] the same on a throwaway PostgreSQL + moto S3 (deleted on exit)
	$(BIN)/python -m sotag.mlruns_config.server --sandbox $(PORT_ARG) $(ARGS)

system-deps:  ## Debian's postgresql, chromium, chromium-driver, openjdk-17-jre-headless, prometheus when missing and installable
	scripts/system-deps.sh

test: setup system-deps lint  ## [PYTEST_ARGS] the whole suite, integration tests included (tests whose system package is missing skip), the DAG tests, the docs site (strict)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)
	$(MAKE) test-dags
	site=$$(mktemp -d) && { $(MAKE) docs DOCS_SITE=$$site; code=$$?; rm -rf $$site; exit $$code; }

docs: setup  ## [DOCS_SITE] the documentation site from docs/ and mkdocs.yml (MkDocs Material, --strict: a broken link fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir $(DOCS_SITE)

test-dags: setup airflow-setup  ## [PYTEST_ARGS] the DAG tests (tests/dags) with Airflow's own python; conftests above tests/dags are sotag's
	$(AIRFLOW_VENV)/bin/python -m pytest -q --confcutdir=tests/dags tests/dags $(PYTEST_ARGS)

airflow-setup: $(AIRFLOW_STAMP)  ## Airflow's own virtualenv .venv-airflow, pinned (airflow/requirements.txt)

$(AIRFLOW_STAMP): airflow/requirements.txt
	test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet -r airflow/requirements.txt
	touch $(AIRFLOW_STAMP)

airflow: setup airflow-setup  ## [AIRFLOW_PORT AIRFLOW_DIR] Airflow standalone on 127.0.0.1:AIRFLOW_PORT (8080), state in .airflow/, the DAGs of dags/
	PATH=$(CURDIR)/$(AIRFLOW_VENV)/bin:$$PATH AIRFLOW_HOME=$(AIRFLOW_DIR) AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=$(AIRFLOW_PORT) \
	AIRFLOW__API__BASE_URL=http://127.0.0.1:$(AIRFLOW_PORT) SOTAG_BIN=$${SOTAG_BIN:-$(CURDIR)/$(BIN)/sotag} \
	AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=$${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$(AIRFLOW_DIR)/airflow.db} \
	$(AIRFLOW_VENV)/bin/airflow standalone

test-unit: setup  ## [PYTEST_ARGS] the tests not marked integration (no real components started)
	$(BIN)/python -m pytest -q -m "not integration" $(PYTEST_ARGS)

lint: setup  ## ruff (lint + format) and the import contracts (the layer rule), checked on the installed layout
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# import-linter walks a package's folder; the repository's folders become one `sotag` package only once
	@# installed (pyproject.toml, package-dir), so the contracts are checked on a wheel's layout in .lint/.
	rm -rf .lint build && $(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --target .lint/site . 2>&1 \
		| { grep -v '^WARNING: Location' || true; }
	cd .lint/site && $(CURDIR)/$(BIN)/lint-imports --config $(CURDIR)/pyproject.toml

format: setup  ## ruff format and ruff check --fix on the tree
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

ui: setup  ## [PORT] the MLflow UI on the embedded store; prints direct links to the training runs and the model
	$(BIN)/python -m sotag.mlruns_config.ui --port $(PORT)

score: setup  ## [IN OUT ARGS] tag a backlog: make score IN=questions.parquet|folder|export.csv|Posts.xml OUT=scored/ (Spark when Java is here)
	@test -n "$(IN)" -a -n "$(OUT)" || { echo "usage: make score IN=path OUT=folder [ARGS='--engine local']" >&2; exit 2; }
	$(call sotag_coded,score "$(IN)" --out "$(OUT)" $(ARGS))

bench-quality: setup  ## [DATA] the default kind, top-500, ensemble, the baseline and the candidates (quality-all: …)
	$(BIN)/python -m bench.quality $(DATA_ARG)

bench-infer: setup  ## [DATA] one question text → tags, fused vs step-by-step, 1/8/64/5,000 questions (infer: …)
	$(BIN)/python -m bench.infer $(DATA_ARG)

bench-train: setup  ## [DATA] wall time of the default training and of the compare grid (SBERT cache cold)
	$(BIN)/python -m bench.train_time $(DATA_ARG)

bench-registry: setup  ## [DATA] promotion decisions on the shared data and a timed train → promote on the server profile
	$(BIN)/python -m bench.registry $(DATA_ARG)

bench-serve: setup  ## [DATA] REST latency/throughput: the original API's pyfunc vs ours under mlflow models serve vs the gateway (serve: …)
	$(BIN)/python -m bench.serve $(DATA_ARG)

bench-sbert: setup  ## [DATA] SBERT texts/s: plain vs candidate CPU backends (cosine to plain); GPU: python -m bench.sbert --gpu
	$(BIN)/python -m bench.sbert $(DATA_ARG)

bench-batch: setup  ## [DATA BENCH_BATCH_ROWS] sotag score on 1M questions: Spark vs in-process rows/s, equality, peak RSS (ends with a batch: line)
	$(if $(BENCH_BATCH_ROWS),BENCH_BATCH_ROWS=$(BENCH_BATCH_ROWS),) $(BIN)/python -m bench.batch $(DATA_ARG)

bench-faults: setup  ## fault injection with real components (ends with a faults: line)
	$(BIN)/python -m bench.faults

bench-loop: setup airflow-setup  ## [ARGS] the weekly loop replayed on time-ordered data (Airflow, gateway, drift) → "loop: …"
	$(BIN)/python -m bench.loop $(ARGS)

bench-drift: setup  ## [DATA] the drift verification scenario (planted topic shift), cold and warm, SBERT throughput
	$(BIN)/python -m bench.drift $(DATA_ARG)

clean:  ## remove what the commands wrote in this folder (stores, artifacts, reports, caches, builds)
	rm -rf mlruns mlartifacts mlflow.db predictions.db reports test-artifacts .cache .locks .pytest_cache .ruff_cache spool \
		spark-warehouse models/current .lint build dist sotag.egg-info site
