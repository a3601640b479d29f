# The two commands of the README. Everything else is a helper for them.
PY ?= python3
VENV ?= .venv

.PHONY: demo test lint venv docs bench bench-quick clean-hub soak fuzz

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

# Not in CI: 20 SIGKILL/restart cycles per transport on hub 4.x and 5.x (CI runs the 3-cycle version).
soak: venv
	@THALOVANT_SOAK_RESTARTS=$${THALOVANT_SOAK_RESTARTS:-20} $(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/live/test_soak.py

# Not in CI (the suite runs a short version): 100k mutated inputs over every decoder and machine.
fuzz: venv
	@$(VENV)/bin/python -m tests.fuzz.fuzz --count $${FUZZ_COUNT:-100000}

docs: venv
	@$(VENV)/bin/mkdocs build --strict

clean-hub:
	@$(VENV)/bin/python -m tests.harness.hub stop-all || true
