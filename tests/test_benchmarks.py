"""The benchmark suite still works: every benchmark runs at a tiny size and reports its figures
(`make bench-smoke`); the suite's table and BENCHMARKS.md section are what the figures say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness import PROJECT

sys.path[:0] = [str(PROJECT), str(PROJECT / "benchmarks")]

from figures import Figure  # noqa: E402

from benchmarks.__main__ import BEGIN, END, SUITE, table, write  # noqa: E402


def test_every_benchmark_runs_and_reports_at_a_tiny_size() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke"], cwd=PROJECT,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")][1:]
    assert {row.split(" | ")[0].strip("| ") for row in rows} == {b.name for b in SUITE}
    assert all(row.rstrip().endswith("| (smoke) |") for row in rows)


def test_median_spread_and_verdict_over_rounds() -> None:
    rounds = [Figure("links", "req/s", value, "req/s", "bare", 1000.0, value / 1000, 0.9)
              for value in (950.0, 700.0, 920.0)]
    lines, verdicts = table(rounds, 3)
    assert lines[2] == ("| links | req/s | 920 req/s | bare | 1,000 req/s | 0.92x | 0.70–0.95 | "
                        ">= 0.9x | met |")
    assert verdicts == [True]
    slow = Figure("startup", "check", 650.0, "ms", target=150.0, op="<=", on="value")
    assert table([slow], 1)[1] == [False]
    assert table([Figure("x", "no target", 1.0, "ms")], 1)[1] == [None]


def test_the_section_is_replaced_and_the_notes_around_it_stay(tmp_path: Path) -> None:
    page = tmp_path / "BENCHMARKS.md"
    page.write_text(f"# Benchmarks\n\nintro\n\n{BEGIN}\nold\n{END}\n\n## Changes\nnote\n",
                    encoding="utf-8")
    write(page, ["| new |"], "machine")
    text = page.read_text(encoding="utf-8")
    assert "old" not in text and "| new |" in text and "machine" in text
    assert text.startswith("# Benchmarks\n\nintro\n\n") and text.endswith("## Changes\nnote\n")
