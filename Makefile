# The two commands of the README: `make demo` and `make test`.
# Both create .venv on first use; torch is pinned to the CPU wheel this machine holds.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: demo test bench install clean dashboard

$(BIN)/trialforge: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/trialforge

demo: install
	$(BIN)/trialforge sweep run jobs/cnn_digits.yaml

dashboard: install
	$(BIN)/trialforge dashboard

# The browser tests drive Debian's chromium (Playwright's own download cannot work offline).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

$(CHROMIUM):
	@echo "installing Debian's chromium for the dashboard's browser tests"
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

test: install $(CHROMIUM)
	$(BIN)/python -m pytest

# Every benchmark (B0-B7; B2 in two parts), ~75 minutes; tables in benchmarks/README.md,
# JSON in benchmarks/results/. B2's published tables come with the `bench` extra.
bench: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .trialforge
