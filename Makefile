# The two commands of the README. Everything else is a helper for them.
PY ?= python3
VENV ?= .venv

.PHONY: demo test lint venv docs bench bench-quick clean-hub

venv:
	@PY=$(PY) VENV=$(VENV) bash scripts/bootstrap.sh

demo: venv
	@$(VENV)/bin/python scripts/demo.py

test: venv
	@VENV=$(VENV) bash scripts/test.sh

lint: venv
	@VENV=$(VENV) ONLY_LINT=1 bash scripts/test.sh

bench: venv
	@$(VENV)/bin/python -m benchmarks.run

bench-quick: venv
	@$(VENV)/bin/python -m benchmarks.run --quick

docs: venv
	@$(VENV)/bin/mkdocs build --strict

clean-hub:
	@$(VENV)/bin/python -m tests.harness.hub stop-all || true
