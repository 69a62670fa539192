# Two entry points, both from a fresh clone:  `make run`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EVENTS ?= data/sample/events.csv.gz
FEATURES_DIR ?= artifacts/features
MODELS_ROOT ?= artifacts/models
PORT ?= 8080

.PHONY: run setup features train serve test lint bench

run: train serve

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-offline.txt requirements-spark.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed

features: setup
	$(PY) -m features.build_features $(EVENTS) --out $(FEATURES_DIR)

train: features
	$(PY) -m vrmodels.train_model --features $(FEATURES_DIR) --models-root $(MODELS_ROOT)

serve: setup
	VR_MODEL_DIR=$(MODELS_ROOT)/latest SAGEMAKER_BIND_TO_PORT=$(PORT) $(PY) serve.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/shellcheck deploy/*.sh tests/engine/*.sh
	$(VENV)/bin/hadolint Dockerfile

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) -m bench.offline
	$(PY) -m bench.quality
	$(PY) -m bench.server
	$(PY) -m bench.memory
