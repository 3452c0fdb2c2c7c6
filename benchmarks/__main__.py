"""The benchmark suite: `python -m benchmarks` (`make bench`) runs every benchmark against local
Dovecot and aiosmtpd in several interleaved rounds, prints one table — each figure beside its
baseline measured in the same run, the ratio, the median over the rounds and their spread, the
target and a verdict — and writes it into BENCHMARKS.md with the machine and the date.

`--smoke` (`make bench-smoke`, and a test in `make test`) runs each benchmark at a tiny size, once:
it shows they still work and report their figures; it gives no verdicts and writes no file.

    python -m benchmarks [--smoke] [--rounds 3] [--only NAME,…] [--out BENCHMARKS.md] [--check]
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from figures import OUT_ENV, Figure, read  # noqa: E402

BEGIN, END = "<!-- figures: written by `make bench` -->", "<!-- /figures -->"


@dataclass(frozen=True)
class Bench:
    name: str  # benchmarks/NAME.py
    full: tuple[str, ...]
    smoke: tuple[str, ...]
    once: bool = False  # a long one runs in the first round only (its row: a median of 1)
    in_bench: bool = True  # False: its full form runs in `make bench-postgresql` only


SUITE = (
    Bench("startup", ("--runs", "9"), ("--runs", "2")),
    Bench("daemon_ready", ("--candidates", "50000", "--runs", "5"), ("--candidates", "300")),
    Bench("daemon_memory", ("--sizes", "10000,100000", "--mails", "1000", "--unplanned"),
          ("--sizes", "200,400", "--mails", "20", "--settle", "0.5", "--unplanned"), once=True),
    Bench("store_write", ("--sizes", "1000,10000,50000"), ("--sizes", "200,400")),
    Bench("intake", ("--sizes", "1000,10000"), ("--sizes", "60,120")),
    Bench("pool_commands", ("--sizes", "10000,50000"), ("--sizes", "300")),
    Bench("followups_tick", ("--candidates", "100000", "--due", "100,1000,10000"),
          ("--candidates", "1000", "--due", "10,40")),
    # issue 23's: full forms in `make bench-postgresql` (the 1,000,000 takes about 3.5 min a run;
    # `--only postgresql` runs this one), smoke forms here
    Bench("postgresql", ("--candidates", "200000", "--companies", "10", "--baseline", "10000",
                         "--due", "100,1000"),
          ("--candidates", "2000", "--companies", "2", "--baseline", "500", "--due", "10,40"),
          in_bench=False),
    # 1, 2, 4 daemons on one PostgreSQL beside one on SQLite (about 3 min; a bigger load is
    # `make bench-postgresql`)
    Bench("postgresql_daemons", ("--mails", "200", "--callbacks", "600", "--outbox", "1100"),
          ("--daemons", "1,2", "--mails", "20", "--callbacks", "40", "--outbox", "30",
           "--concurrency", "10"), in_bench=False),
    Bench("callbacks", ("--count", "3000"), ("--count", "60", "--concurrency", "10")),
    Bench("links", ("--requests", "3000", "--rounds", "1"),
          ("--requests", "60", "--rounds", "1", "--links", "10", "--concurrency", "10")),
    Bench("draft_rewrite", ("--drafts", "30"), ("--drafts", "2")),
    Bench("mail_size", ("--sizes-mb", "1,30,43"), ("--sizes-mb", "1,8", "--limit-mb", "2")),
    Bench("mixed_hour", (), ("--applications", "100", "--drafts", "5", "--outbox", "5", "--clicks",
                             "50", "--callbacks", "20", "--followups", "10", "--sample", "10"),
          once=True),
)


def run(bench: Bench, smoke: bool, out: Path, log: Path) -> float:
    """One run of one benchmark; its figures land in `out`. Seconds taken."""
    started = time.monotonic()
    with log.open("ab") as sink:
        done = subprocess.run([sys.executable, str(HERE / f"{bench.name}.py"),
                               *(bench.smoke if smoke else bench.full)],
                              env={**os.environ, OUT_ENV: str(out)}, stdout=sink,
                              stderr=subprocess.STDOUT, timeout=1800, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmarks: {bench.name} failed (exit {done.returncode}); see {log}")
    return time.monotonic() - started


def number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return f"{text} {unit}".strip()


def middle(runs: list[Figure]) -> Figure:
    """The median over the rounds."""
    base = [f.baseline_value for f in runs if f.baseline_value is not None]
    ratios = [f.ratio for f in runs if f.ratio is not None]
    return Figure(**{**runs[0].__dict__, "value": statistics.median(f.value for f in runs),
                     "baseline_value": statistics.median(base) if base else None,
                     "ratio": statistics.median(ratios) if ratios else None})


def row(runs: list[Figure], judge: bool) -> str:
    """The spread is the range, over the rounds, of what the target reads."""
    mid = middle(runs)
    judged = [f.ratio if mid.on == "ratio" else f.value for f in runs]
    numbers = [x for x in judged if x is not None]
    spread = f"{min(numbers):,.2f}–{max(numbers):,.2f}" if len(numbers) > 1 else "–"
    target = "–" if mid.target is None else (
        f"{mid.op} {mid.target:g}{'x' if mid.on == 'ratio' else ' ' + mid.unit}")
    verdict = {True: "met", False: "**missed**", None: "–"}[mid.met()] if judge else "(smoke)"
    ratio = "–" if mid.ratio is None else f"{mid.ratio:.2f}x"
    return (f"| {mid.benchmark} | {mid.what} | {number(mid.value, mid.unit)} | "
            f"{mid.baseline or '–'} | {number(mid.baseline_value, mid.unit)} | {ratio} | "
            f"{spread} | {target} | {verdict} |")


def table(figures: list[Figure], rounds: int, judge: bool = True
          ) -> tuple[list[str], list[bool | None]]:
    grouped: dict[tuple[str, str], list[Figure]] = defaultdict(list)
    for figure in figures:
        grouped[figure.key].append(figure)
    lines = [f"| benchmark | figure | median of {rounds} | baseline | baseline value | ratio | "
             "spread | target | verdict |", "|---|---|---:|---|---:|---:|---:|---|---|"]
    lines += [row(runs, judge) for runs in grouped.values()]
    return lines, [middle(runs).met() for runs in grouped.values()]


def machine() -> str:
    import psutil

    try:
        dovecot = subprocess.run(["/usr/sbin/dovecot", "--version"], capture_output=True,
                                 text=True, check=False).stdout.split()[0]
    except (OSError, IndexError):
        dovecot = "?"
    memory = psutil.virtual_memory().total / 2**30
    return (f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores, {memory:.0f} GiB; "
            f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
            f"Dovecot {dovecot}; {platform.system()} {platform.release()}; load average "
            f"{os.getloadavg()[0]:.1f} at the end")


def write(path: Path, lines: list[str], header: str) -> None:
    """The generated section between the markers; the notes around it stay."""
    section = "\n".join([BEGIN, "", header, "", *lines, "", END])
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    if BEGIN in text and END in text:
        before, _, rest = text.partition(BEGIN)
        text = before + section + rest.partition(END)[2]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, once, no file")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--out", type=Path, default=HERE.parent / "BENCHMARKS.md")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    named = args.only.split(",") if args.only else []
    chosen = [b for b in SUITE if b.name in named or (not named and (b.in_bench or args.smoke))]
    rounds = 1 if args.smoke else args.rounds
    with tempfile.TemporaryDirectory(prefix="mailflow-bench-") as tmp:
        out, log = Path(tmp) / "figures.jsonl", Path(tmp) / "benchmarks.log"
        for n in range(rounds):  # interleaved: every benchmark once per round
            for bench in chosen:
                if bench.once and n > 0:
                    continue
                seconds = run(bench, args.smoke, out, log)
                print(f"round {n + 1}/{rounds}: {bench.name} {seconds:.0f} s", file=sys.stderr)
        figures = read(str(out)) if out.exists() else []
        silent = [b.name for b in chosen if not any(f.benchmark == b.name for f in figures)]
        if silent:
            raise SystemExit(f"benchmarks: reported no figures: {', '.join(silent)}")
    lines, verdicts = table(figures, rounds, judge=not args.smoke)
    print("\n".join(lines))
    if not args.smoke:
        write(args.out, lines, machine())
        print(f"\nwritten to {args.out}", file=sys.stderr)
    return 1 if args.check and False in verdicts else 0


if __name__ == "__main__":
    sys.exit(main())
