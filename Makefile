# Two commands on a fresh machine: `make demo` runs the main job, `make test` runs the tests.
# Each creates its own virtual environment in .venv and installs what it needs.
# `make bench` times convt (with its optional numba accelerator) against its peers in a
# separate environment, .venv-bench.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

BENCH_VENV ?= .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python
# torch is pinned: its CPU build is served locally, an unpinned torch pulls CUDA wheels.
BENCH_PEERS := torch==2.13.0 tensorflow-cpu jax onnxruntime onnx keras matplotlib

.PHONY: demo test bench clean

$(VENV)/.installed-%: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$*]"
	touch $@

demo: $(VENV)/.installed-demo
	$(PY) -m convt demo

test: $(VENV)/.installed-test
	$(PY) -m pytest

$(BENCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_PY) -m pip install --quiet --upgrade pip
	$(BENCH_PY) -m pip install --quiet -e ".[fast]" $(BENCH_PEERS)
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_PY) -m benchmarks.conv_transpose --json docs/benchmarks.json \
		--markdown docs/benchmarks.md --plot docs/benchmarks.png

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache build *.egg-info src/*.egg-info
