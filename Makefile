# annpal: the two commands of the README.
#   make run   install what is missing, then run the pipeline on the embedded test data -> results/
#   make test  install what is missing, then run the whole test suite
# Installs go into git-ignored folders of the clone (.venv, .tools); pip's and Maven's download caches
# stay in their default places outside the clone (~/.cache/pip, ~/.m2), so a second clone is quick.

SHELL      := /bin/bash
PYTHON     ?= python3
VENV       ?= .venv
NXF_DIR    ?= .tools/nextflow
PYTEST_ARGS ?=

export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/$(NXF_DIR)/bin:$(PATH)
export NXF_HOME ?= $(CURDIR)/$(NXF_DIR)/home
export NXF_OFFLINE := true

.PHONY: setup venv nextflow system-deps run test lint bench validation clean

setup: venv nextflow

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.lock pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r requirements.lock
	$(VENV)/bin/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	@touch $@

nextflow: $(NXF_DIR)/bin/nextflow
$(NXF_DIR)/bin/nextflow: scripts/install-nextflow.sh
	scripts/install-nextflow.sh $(NXF_DIR)

# Debian packages some tests use (browser for the report, plink2 for benchmarks, Slurm for the
# slurm profile). Best effort: tests that need a missing one are skipped with the reason.
system-deps:
	-@scripts/install-system-deps.sh

run: setup
	nextflow run main.nf -profile test --outdir results

test: setup system-deps
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check src bin tests benchmarks

# Speed/memory benchmarks: each measures ratios against a baseline in the same run and writes
# benchmarks/results/<area>.json (minutes each; plink2 is needed for the GWAS comparison).
bench: setup
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done

# The simulation study of docs/validation.md: genotypes, lambda 1 and 3, the null run, the summary in
# docs/validation/ (76 min on 2 cores; runs resume when started again; see scripts/validation.sh).
validation: setup
	nice -n 10 scripts/validation.sh

clean:
	rm -rf work .nextflow .nextflow.log* results
