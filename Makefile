# Two commands on a fresh machine (python3 and make): `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The demo keeps Prefect's state under var/ and ignores any Prefect server configured elsewhere.
DEMO_ENV := env -u PREFECT_API_URL -u PREFECT_PROFILE PREFECT_HOME=$(CURDIR)/var/prefect

.PHONY: install demo test test-fast lint format bench server clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# setuptools warns about any folder named like the package on an editable install; here
	# that folder is the package itself (revops/), so the warning says nothing.
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(DEMO_ENV) $(BIN)/revops demo

# Everything CI runs: the lint (style and the layer contract), then every test tier, on two
# workers (most tests wait on a server or a subprocess; each test module stays on one worker
# so its module fixtures start once).
test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile

# The pure tier: domain logic, mappings, file parsing; no Prefect, PostgreSQL or servers.
test-fast: install
	$(BIN)/python -m pytest -n 2 -q -m "not (prefect or postgres or servers or live)"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	scripts/lint_imports.sh

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

server: install
	scripts/local_server.sh

bench: install
	$(BIN)/python bench/reconcile.py
	$(BIN)/python bench/risk.py
	$(BIN)/python bench/salesforce.py
	$(BIN)/python bench/e2e.py
	$(BIN)/python bench/warehouse.py

clean:
	rm -rf var .pytest_cache .ruff_cache
