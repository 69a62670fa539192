# Two entry points, both from a fresh clone:  `make run`  and  `make test`.
# `run` installs what training and serving need (requirements.txt, requirements-offline.txt); `test` adds the
# test, deploy and Spark tools (requirements-dev.txt). uv installs them: the same wheels as pip, in parallel, and
# compiles their bytecode, as pip does and uv by default does not: where PYTHONDONTWRITEBYTECODE is set (it is on
# our machines), Python never caches what it compiles, and every process compiled its imports again (serving's
# 3.5 s more, each `aws` CLI call 1.4 s more).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
EVENTS ?= data/sample/events.csv.gz
VIDEOS ?= data/sample/videos.csv.gz
FEATURES_DIR ?= artifacts/features
MODELS_ROOT ?= artifacts/models
PORT ?= 8080

.PHONY: run setup dev-setup features train serve test lint bench sdk3

run: train serve

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.run-installed: requirements.txt requirements-offline.txt | $(UV)
	$(UV) pip install --quiet --compile-bytecode --python $(PY) -r requirements.txt -r requirements-offline.txt
	touch $@

# pyspark comes only as a 450 MB sdist. Behind a package mirror that sends no caching headers, uv downloads and
# builds it again on every fresh install, each time into a new revision of its cache (2.3 GB more each time: it
# once filled a 252 GB disk); `uv cache prune` drops the unreachable revisions (1-2 s) and touches nothing in use.
$(VENV)/.dev-installed: $(VENV)/.run-installed requirements-dev.txt requirements-spark.txt
	$(UV) pip install --quiet --compile-bytecode --python $(PY) -r requirements-dev.txt
	$(UV) cache prune --quiet
	touch $@

setup: $(VENV)/.run-installed

dev-setup: $(VENV)/.dev-installed

features: setup
	$(PY) -m features.build_features $(EVENTS) --videos $(VIDEOS) --out $(FEATURES_DIR)

train: features
	$(PY) -m vrmodels.train_model --features $(FEATURES_DIR) --models-root $(MODELS_ROOT)

serve: setup
	VR_MODEL_DIR=$(MODELS_ROOT)/latest SAGEMAKER_BIND_TO_PORT=$(PORT) $(PY) serve.py

lint: dev-setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/shellcheck deploy/*.sh tests/engine/*.sh
	$(VENV)/bin/hadolint Dockerfile

# Two pytest workers, a test file each at a time, in the order tests/conftest.py gives (longest files first; xdist
# would otherwise order files by their number of tests). A third worker was slower (931 s against 851 s): the run is
# bound by the two cores. PYTEST_WORKERS=0 runs in one process. The 20 slowest tests are listed at the end: the run
# must stay well under 15 minutes.
PYTEST_WORKERS ?= 2
test: lint
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=20 $(PYTEST_ARGS)

bench: dev-setup
	$(PY) -m bench.offline
	$(PY) -m bench.quality
	$(PY) -m bench.server
	$(PY) -m bench.memory

# Opt-in: the SageMaker SDK v3 (about 1 GB) in a venv of its own, for the test of deploy/sagemaker_sdk_example.py.
sdk3:
	python3 -m venv .venv-sdk3
	.venv-sdk3/bin/pip install --quiet --disable-pip-version-check "sagemaker>=3,<4"
