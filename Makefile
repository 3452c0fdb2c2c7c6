# The README's two commands: `make demo` and `make test`. Both set everything up first.
PY := .venv/bin

.PHONY: install demo test lint bench bench-smoke bench-postgresql chaos soak

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

# every benchmark, 3 interleaved rounds (the long ones once), one table; writes BENCHMARKS.md
bench: install
	$(PY)/python -m benchmarks

# each benchmark at a tiny size: they still run and report (also a test in `make test`)
bench-smoke: install
	$(PY)/python -m benchmarks --smoke

# the scheduler tick on PostgreSQL with 1,000,000 candidates over 10 companies, once (about 4 min;
# the suite runs it at 200,000), then 1, 2, 4 daemons on one PostgreSQL at a bigger load
bench-postgresql: install
	$(PY)/python benchmarks/postgresql.py --candidates 1000000 --companies 10 --baseline 10000
	$(PY)/python benchmarks/postgresql_daemons.py --mails 2000 --callbacks 6000 --outbox 5000

# The long forms of tests/chaos (`make test` runs short ones): >= 200 kills and 200 cuts; an hour
# of accelerated time. Each prints its counts or curves.
chaos: install
	$(PY)/pytest -q -s tests/chaos/test_kill_and_cut.py tests/chaos/test_disk_full.py tests/chaos/test_two_daemons.py --chaos=full

soak: install
	$(PY)/pytest -q -s tests/chaos/test_soak.py --soak=full
