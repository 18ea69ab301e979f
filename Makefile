# Two commands do everything (README.md): `make run` and `make test`.
# Both create the environment in .venv/ from requirements.lock the first time.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CORES ?= all

.PHONY: run test lint lock clean chromium references

# pip's own time goes mostly to reading each package's index page (pip 23.2, Python 3.11's
# bundled one, 70% of it; pip 26.3 is faster at it), so the newer pip installs the lock in four
# parallel parts (--no-deps: the lock is complete, which `pip check` confirms): 40 s against 15 s
# on 2 cores, the same files. Then compileall compiles the modules on all cores (pip compiles
# one file at a time: 25 s), but not the packages' own test suites, which nothing imports (a
# third of the source: 11 s against 18 s). The compiled files are needed: with
# PYTHONDONTWRITEBYTECODE set, as on this project's machines, every process would compile
# pandas, scipy and Snakemake again (make test took twice as long, 16 min).
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check
$(INSTALLED): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --no-compile pip==26.3
	grep -v '^#' requirements.lock | split -n r/4 - $(VENV)/lock-part-
	ls $(VENV)/lock-part-* | xargs -P 4 -I PART $(PIP) install --no-compile --no-deps -r PART
	rm $(VENV)/lock-part-*
	$(PIP) check
	$(BIN)/python -m compileall -q -j 0 -x '/tests/' $(VENV)/lib
	$(PIP) install --no-deps --editable .
	touch $@

run: $(INSTALLED)  ## set up, then run the whole workflow on all cores
	$(BIN)/snakemake --cores $(CORES)

# The SLURM tests (time-limited) run alongside the rest, which runs on two workers (pytest-xdist;
# worksteal: a worker out of tests takes some of the other's): the SLURM tests mostly wait on
# the cluster's scheduling. Their output follows the rest's, from
# .pytest-artifacts/slurm.log; make fails if either part fails. Both sessions read one
# small_run, made by whichever asks first (tests/conftest.py, GLMFLOW_SHARED_RUNS).
test: $(INSTALLED) chromium  ## set up, then run the test suite
	@mkdir -p .pytest-artifacts
	@export GLMFLOW_SHARED_RUNS=$$(mktemp -d); \
	  timeout -k 30 1200 $(BIN)/pytest -m slurm tests/test_slurm.py >.pytest-artifacts/slurm.log 2>&1 & slurm=$$!; \
	  $(BIN)/pytest -n 2 --dist worksteal -m "not slurm"; rest=$$?; \
	  wait $$slurm; status=$$?; rm -rf "$$GLMFLOW_SHARED_RUNS"; \
	  echo "--- the SLURM tests (exit $$status) ---"; cat .pytest-artifacts/slurm.log; \
	  [ $$rest = 0 ] && [ $$status = 0 ]

# The browser test needs Debian's chromium: installed here when missing and we are root.
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; } || \
	  { echo "the report's browser test needs Chromium: apt-get install chromium" >&2; exit 1; }

# tests/r/*_data.R first: the other scripts read the data they write.
R_SCRIPTS = $(filter %_data.R,$(wildcard tests/r/*.R)) $(filter-out %_data.R,$(wildcard tests/r/*.R))
REFERENCES = tests/r tests/reference resources
# Without address-space randomisation: lme4's deviance at a given (theta, beta) depends on where
# the process's memory lies (two values 3e-11 apart on grouseticks' three-factor Poisson model,
# about half the runs each; one value in every run with `setarch -R`, whatever the environment's
# size), and bobyqa turns that into a different stopping point 1e-8 away. Where setarch cannot
# turn randomisation off (a container that forbids it), plain Rscript.
RSCRIPT := $(shell setarch "$$(uname -m)" -R true 2>/dev/null && echo 'setarch "$$(uname -m)" -R Rscript' || echo Rscript)

references:  ## rerun every R script in tests/r; fail if a committed reference (or data file) changes
	@command -v Rscript >/dev/null || { echo "make references needs R: Rscript with lme4, lmerTest, effects, glmmTMB, numDeriv and jsonlite (Debian: apt-get install r-base-core r-cran-lme4 r-cran-lmertest r-cran-effects r-cran-glmmtmb r-cran-numderiv r-cran-jsonlite)" >&2; exit 1; }
	@set -e; for script in $(R_SCRIPTS); do echo "$(RSCRIPT) $$script"; $(RSCRIPT) $$script; done
	@git diff --exit-code --stat -- $(REFERENCES) || { echo "the R scripts no longer reproduce the committed references above (git diff -- $(REFERENCES))" >&2; exit 1; }
	@untracked="$$(git ls-files --others --exclude-standard -- $(REFERENCES))"; [ -z "$$untracked" ] || { echo "the R scripts wrote files that are not committed: $$untracked" >&2; exit 1; }

lint: $(INSTALLED)  ## the linters that tests/test_lint.py also runs
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/snakefmt --check . && $(BIN)/snakemake --lint

lock:  ## re-pin every dependency from a fresh environment
	rm -rf /tmp/glmflow-lock && $(PYTHON) -m venv /tmp/glmflow-lock
	/tmp/glmflow-lock/bin/python -m pip install --quiet ".[dev]"
	(echo "# Exact versions of every package glmflow installs (pip freeze of a fresh .venv)."; \
	 echo "# Regenerate: make lock"; \
	 /tmp/glmflow-lock/bin/python -m pip freeze --exclude glmflow) > requirements.lock

clean:  ## remove the workflow's outputs (not the environment)
	rm -rf results logs benchmarks .snakemake
