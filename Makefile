# The README's two commands: `make demo` and `make test`. Both set everything up first.
PY := .venv/bin

.PHONY: install demo test lint bench chaos soak

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

# The long forms of tests/chaos (`make test` runs short ones): >= 200 kills and 200 cuts; an hour
# of accelerated time. Each prints its counts or curves.
chaos: install
	$(PY)/pytest -q -s tests/chaos/test_kill_and_cut.py tests/chaos/test_disk_full.py --chaos=full

soak: install
	$(PY)/pytest -q -s tests/chaos/test_soak.py --soak=full
