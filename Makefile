# flotta: `make demo` runs the tour, `make test` runs the tests. Both install first if needed.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install demo test test-fast test-all lint clean

install:
	@./scripts/install.sh

demo: install
	@$(PY) scripts/demo.py

test: install
	@$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-fast: install
	@$(PY) -m pytest -q -p no:cacheprovider -m "not slow and not root and not compat" $(PYTEST_ARGS)

test-all: install
	@FLOTTA_SLOW=1 $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: install
	@$(VENV)/bin/ruff check runtime consensus actors sim tests bench
	@$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
