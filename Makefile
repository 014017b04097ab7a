# streamlearn: the commands a user runs. `make demo` and `make test` set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BROKERS ?= 1
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock 2>/dev/null | cksum | cut -d' ' -f1)

.PHONY: setup kafka-up kafka-down kafka-status registry-up registry-down registry-status test test-fast lint format demo demo-stop clean bench bench-quick

setup: $(STAMP)

$(STAMP):
	@command -v $(PYTHON) >/dev/null || { echo "setup: $(PYTHON) (3.11 or 3.12) is required"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	@# the checkout on the venv's import path (a .pth file; no editable build, whose setuptools
	@# warnings are all a first `make demo` would print): app, agents and tables import from here
	$(BIN)/python -m pip uninstall -q -y streamlearn 2>/dev/null || true
	$(BIN)/python -c 'import sys, sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()["purelib"], "streamlearn.pth").write_text(sys.argv[1] + "\n")' "$(CURDIR)"
	rm -f $(VENV)/.installed-* && touch $@

# SECURITY=sasl_ssl: one broker with SASL_SSL (SCRAM), mutual TLS and ACLs (see scripts/kafka.sh)
kafka-up:
	$(if $(SECURITY),KAFKA_SECURITY=$(SECURITY) )scripts/kafka.sh up $(BROKERS)

kafka-down:
	scripts/kafka.sh down

kafka-status:
	scripts/kafka.sh status

# a local schema registry (Apicurio, Confluent's API) on REGISTRY_PORT (8081): see scripts/registry.sh
registry-up:
	scripts/registry.sh up

registry-down:
	scripts/registry.sh down

registry-status:
	scripts/registry.sh status

test: setup
	scripts/ensure-chromium.sh
	$(BIN)/python -m pytest -v

test-fast: setup
	scripts/ensure-chromium.sh
	$(BIN)/python -m pytest -m "not slow"

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

demo: setup
	scripts/demo.sh

demo-stop:
	scripts/demo.sh stop

clean:
	rm -rf .data bench/results tests/artifacts

bench: setup
	bench/peers/setup.sh
	$(BIN)/python bench/run.py --events 100000 --reps 5

bench-quick: setup
	bench/peers/setup.sh
	$(BIN)/python bench/run.py --quick
