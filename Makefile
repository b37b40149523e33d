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

.PHONY: install demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

STAMP := $(VENV)/.installed.$(EXTRAS)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

install: $(STAMP)

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

clean:
	rm -rf demo previews .pytest_cache
