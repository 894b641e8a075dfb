# Setup, run, test, lint, bench. Every target creates .venv and installs the pinned
# requirements first if needed (Python 3.11, CPU torch 2.13.0; no network beyond PyPI).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test test-fast lint bench clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	@touch $(STAMP)

run: setup  ## the offline default: ResNet-20 on digits, W&B offline, ~80 s on 2 CPU cores
	$(PY) src/train.py experiment=quickstart

test: setup  ## the whole test suite (includes a real learning run and the local SLURM cluster when possible)
	$(PY) -m pytest

test-fast: setup  ## skip the tests marked slow
	$(PY) -m pytest -m "not slow"

lint: setup
	$(VENV)/bin/pre-commit run --all-files

bench: setup  ## crossbar estimator speed, training throughput per method, svd vs whitened factorization
	$(PY) bench/bench_crossbar.py
	$(PY) bench/bench_training.py
	$(PY) bench/bench_factorization.py

clean:
	rm -rf outputs multirun .pytest_cache .mypy_cache .ruff_cache
