# Two commands for a newcomer: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of torch where no NVIDIA GPU is present (on this project's machines
# `torch==2.13.0` resolves to a local CPU wheel); override on GPU nodes, e.g. TORCH_SPEC=torch.
TORCH_SPEC ?= torch==2.13.0
# Optional extras to install with the package (comma-separated): `make test EXTRAS=test,ray` also
# runs the Ray executor's tests (CI does), `EXTRAS=test,gpu` on a GPU node.
EXTRAS ?= test

.PHONY: install demo test bench gpu-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

STAMP := $(VENV)/.installed.$(EXTRAS)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

# numba compiles the CPU loops into its disk cache (~12 s for all), here rather than in the first
# job; again whenever a loop's module changes (numba then recompiles that loop, the rest load)
WARM := $(VENV)/.warm
$(WARM): $(STAMP) kernels/compiled.py $(wildcard kernels/*_scan.py)
	$(BIN)/python -c "from animated_previews.kernels.compiled import warm; warm()"
	touch $@

install: $(STAMP) $(WARM)

demo: install
	$(BIN)/python -m animated_previews.engine.sample demo
	@# exit status 1 means some job failed: the sample manifest has one bad line on purpose
	@$(BIN)/engine run --batch demo/manifest.jsonl --out-dir demo/out --store demo/store.db; \
	  status=$$?; echo; echo "Outputs are in $(CURDIR)/demo/out (results: demo/out/results.jsonl)"; \
	  test $$status -le 1

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -c "import matplotlib" 2>/dev/null || $(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python -m bench.bench

# The project's GPU verification (bench/gpu_check.py): GPU tests, doctor, CPU/GPU parity, decoder
# reuse, processes per GPU, `engine bench --devices cpu,cuda`, in under 5 minutes; figures to
# bench/results/gpu-check-*.
# Without a GPU it says so and exits 0 at once. No install step: on a GPU node it runs with the
# venv's Python when there is one, else with $(PYTHON) (a machine's own torch + PyAV +
# PyNvVideoCodec, the package taken from this checkout).
GPU_CHECK_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
gpu-check:
	$(GPU_CHECK_PYTHON) -m bench.gpu_check

clean:
	rm -rf demo previews .pytest_cache
