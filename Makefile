# The README's two commands: `make demo` and `make test`. Both set everything up first.
PY := .venv/bin

.PHONY: install demo test lint bench

install:
	bash .ci/install-deps

demo: install
	$(PY)/mailflow demo

lint: install
	$(PY)/ruff check .
	$(PY)/mypy
	$(PY)/lint-imports --no-cache
	$(PY)/deptry .

test: lint
	$(PY)/pytest -q

bench: install
	$(PY)/python benchmarks/store_write.py
