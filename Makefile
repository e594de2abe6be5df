# The two commands of the README: `make demo` and `make test`.
# Both create .venv on first use; torch is pinned to the CPU wheel this machine holds.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: demo test bench install clean

$(BIN)/trialforge: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/trialforge

demo: install
	$(BIN)/trialforge sweep run jobs/cnn_digits.yaml

test: install
	$(BIN)/python -m pytest

# Every benchmark (B1-B6), ~15 minutes; tables in benchmarks/README.md, JSON in benchmarks/results/.
bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .trialforge
