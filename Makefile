# Two commands on a fresh machine with Python 3.11:  make run  |  make test
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
# glibc's malloc keeps XLA's per-step buffers and backs them with huge pages: a faster CPU step
# for every target (video_s3d/allocator.py says why; tests/test_allocator.py keeps the two
# values equal). A GLIBC_TUNABLES of your own replaces it.
export GLIBC_TUNABLES ?= glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=100000000000
# The stamp holds a copy of requirements.txt: a changed file means a new install.
STAMP  := $(VENV)/.requirements.installed

.PHONY: run test test-fast format table study cost clean-venv

$(PY):
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed: install it or run 'make PYTHON=/path/to/python3.11 ...'"; exit 1; }
	@echo "==> creating $(VENV) with $$($(PYTHON) --version)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip

$(STAMP): requirements.txt | $(PY)
	@echo "==> installing requirements (first time takes a few minutes)"
	$(PY) -m pip install --progress-bar off -r requirements.txt
	@cp requirements.txt $(STAMP)

# Train and evaluate tiny S3D-G and I2D on the generated synthetic dataset, then print a table.
run: $(STAMP)
	$(PY) -m experiments.quickstart

# Formatting and import order first (ruff.toml; fix with `make format`), then the whole test
# suite (slow tests included), two workers for the two CPU cores.
test: $(STAMP)
	$(VENV)/bin/ruff format --check --quiet . || { echo "Formatting differs: run 'make format'."; exit 1; }
	$(VENV)/bin/ruff check --quiet .
	$(PY) -m pytest -n 2 --durations=15 -q

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Everything but the tests marked slow.
test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -q -m "not slow"

# The paper's study in miniature on CPU, quick version (one seed, a subset of the full
# study's runs: tiny I2D/I3D/S3D/S3D-G on `order`, I2D/S3D on `appearance`), then the
# speed-accuracy table, plots and findings.md (out/paper_study). Two runs at a time.
table: $(STAMP)
	$(PY) -m experiments.paper_study --num_seeds=1 --quick

# The full study (60 runs: 3 seeds; the heavy sweep on `order` and `flash_order`; reuses make
# table's runs). It restores finished runs from, and adds new ones to, the committed archive,
# so it can be finished over several sittings; commit experiments/results/paper_study
# afterwards.
study: $(STAMP)
	$(PY) -m experiments.paper_study --archive=experiments/results/paper_study

cost: $(STAMP)
	$(PY) -m video_s3d.cost --all

clean-venv:
	rm -rf $(VENV)
