# make install | test | test-isa | test-cluster | fuzz | demo | reproduce | bench | bench-cluster | lint
# (EXTRA=cu112 for NVIDIA GPUs)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
EXTRA  ?= cpu
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(EXTRA)

.PHONY: install test test-isa test-cluster fuzz demo reproduce bench bench-cluster lint clean

install: $(STAMP)

$(STAMP): setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRA),test,bench]"
	$(BIN)/python -m pip check
	touch $@

test: install
	$(BIN)/python -m pytest -q tests

# the numerics tests once per oneDNN instruction-set level this CPU has (AVX2 ... AMX)
test-isa: install
	$(BIN)/python -m tests.isa_levels

# vgg launch --launcher ssh across 3 hosts built here (network namespaces on a bridge, an
# sshd each; root, installs openssh-server if missing); elsewhere the tests say why they skip
test-cluster: install
	VGG_CLUSTER=1 $(BIN)/python -m pytest -q -rs tests/test_cluster.py

# every reader fuzzed at 400 random examples each, round after round, for FUZZ_MINUTES
# (make test runs the same suite at 12 fixed examples per reader)
FUZZ_MINUTES ?= 30
fuzz: install
	end=$$(( $$(date +%s) + 60 * $(FUZZ_MINUTES) )); round=0; \
	while [ $$(date +%s) -lt $$end ]; do round=$$((round + 1)); echo "fuzz round $$round"; \
	  VGG_FUZZ_EXAMPLES=400 VGG_FUZZ_RANDOM=1 $(BIN)/python -m pytest -q -x -p no:cacheprovider \
	    tests/test_fuzz.py || exit 1; done

demo: install
	$(BIN)/python -m vggcli.demo

# the paper's findings, five seeds, paired tests: docs/reproduction.md and .json
reproduce: install
	$(BIN)/python -m vggcli reproduce --copy-to docs/reproduction.md

bench: install
	$(BIN)/python -m vggcli.bench

bench-cluster: install
	$(BIN)/python -m vggcli.bench cluster

lint: install
	$(BIN)/ruff check vggcli data_tools tests

clean:
	rm -rf $(VENV) build *.egg-info demo/out reproduce/out
