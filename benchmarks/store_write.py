"""The cost of one durable write as the talent pool grows.

One write = a `put` of a new candidate document (name, e-mails, phones, message ids) on a pool of
1k / 10k / 50k candidates, for each engine, beside TinyDB's default `JSONStorage` (what a plain
TinyDB install does: in-place rewrite, no fsync). Prints a markdown table: median milliseconds per
write and the ratio to the same engine at 1k.

The requirement (DESIGN.md, "costs grow with the work to do, not with the size of the pool"): the
default engine's write at 50k within 3x of its write at 1k. `--check` exits 1 when it is not.

    python benchmarks/store_write.py [--sizes 1000,10000,50000] [--dir DIR] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import Figure, emit
from tinydb import TinyDB

from mailflow.store.sqlite import SqliteStore
from mailflow.store.tinydb import TinyStore

REQUIRED_RATIO = 3.0
Write = Callable[[int], None]


def candidate(i: int) -> dict[str, Any]:
    return {
        "id": f"c{i:07d}",
        "name": f"候補者 {i}",
        "emails": [f"candidate{i}@example.jp", f"c{i}@mail.example.com"],
        "phones": [f"090-{i % 10000:04d}-{i % 7919:04d}"],
        "message_ids": [f"<{i}.{j}@mail.example.jp>" for j in range(2)],
        "relay_ref": f"R-{i:07d}",
        "applied": [{"job": "backend", "at": "2025-04-01T09:00:00Z", "state": "rejected"}],
        "note": "面接は月曜日 10:00〜。Python と SQL の経験あり。",
    }


def prefill_json(path: Path, n: int, table: str = "candidates", int_ids: bool = False) -> None:
    """Write a TinyDB file of n candidates directly (inserting one by one would take hours)."""
    docs = {(str(i + 1) if int_ids else f"c{i:07d}"): candidate(i) for i in range(n)}
    path.write_text(json.dumps({table: docs}, ensure_ascii=False), encoding="utf-8")


def sqlite_engine(synchronous: str) -> Callable[[Path, int], tuple[Write, Callable[[], None]]]:
    def setup(work: Path, n: int) -> tuple[Write, Callable[[], None]]:
        store = SqliteStore(work / "bench.sqlite3", synchronous=synchronous)  # type: ignore[arg-type]
        with store.transaction():
            for i in range(n):
                store.put("candidates", f"c{i:07d}", candidate(i))
        return (lambda i: store.put("candidates", f"c{i:07d}", candidate(i))), store.close

    return setup


def tiny_store(work: Path, n: int) -> tuple[Write, Callable[[], None]]:
    path = work / "bench.json"
    prefill_json(path, n)
    store = TinyStore(path)
    return (lambda i: store.put("candidates", f"c{i:07d}", candidate(i))), store.close


def tinydb_default(work: Path, n: int) -> tuple[Write, Callable[[], None]]:
    path = work / "default.json"
    prefill_json(path, n, table="_default", int_ids=True)
    db = TinyDB(str(path))
    return (lambda i: db.insert(candidate(i)) and None), db.close


ENGINES: list[tuple[str, Callable[[Path, int], tuple[Write, Callable[[], None]]], bool]] = [
    # name, setup, slow (whole-file rewrite: fewer timed writes at large sizes)
    ("sqlite (default, synchronous=FULL)", sqlite_engine("FULL"), False),
    ("sqlite, synchronous=NORMAL", sqlite_engine("NORMAL"), False),
    ("tinydb (mailflow TinyStore, atomic+fsync)", tiny_store, True),
    ("tinydb default JSONStorage", tinydb_default, True),
]


def writes_for(n: int, slow: bool) -> int:
    if not slow:
        return 300
    return 40 if n <= 1000 else 12 if n <= 10_000 else 5


def measure(
    setup: Callable[[Path, int], tuple[Write, Callable[[], None]]], n: int, k: int, base: Path
) -> float:
    work = Path(tempfile.mkdtemp(prefix="store-bench-", dir=base))
    try:
        write, close = setup(work, n)
        try:
            times = []
            for j in range(k):
                start = time.perf_counter()
                write(n + j)
                times.append(time.perf_counter() - start)
        finally:
            close()
        return statistics.median(times) * 1000
    finally:
        shutil.rmtree(work)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write (default: a temp dir)"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the default engine misses")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    base = args.dir or Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)

    print(
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{platform.system()} {platform.release()}, files in {base} "
        f"({os.statvfs(base).f_bsize}-byte blocks)\n"
    )
    print("| engine | candidates | writes timed | median ms/write | vs 1k |")
    print("|---|---:|---:|---:|---:|")
    ratios: dict[str, float] = {}
    figures: list[Figure] = []
    for name, setup, slow in ENGINES:
        first: float | None = None
        for n in sizes:
            k = writes_for(n, slow)
            ms = measure(setup, n, k, base)
            first = first if first is not None else ms
            ratio = ms / first
            ratios[name] = ratio
            if name == ENGINES[0][0] and n != sizes[0]:
                figures.append(Figure("store_write", f"one durable write at {n:,} candidates",
                                      ms, "ms", f"the same at {sizes[0]:,}", first, ratio,
                                      REQUIRED_RATIO, "<="))
            print(f"| {name} | {n:,} | {k} | {ms:.3f} | {ratio:.1f}x |", flush=True)
    emit(*figures)
    default = ENGINES[0][0]
    verdict = ratios[default] <= REQUIRED_RATIO
    print(
        f"\n{default}: {sizes[-1]:,} vs {sizes[0]:,} = {ratios[default]:.1f}x "
        f"(required <= {REQUIRED_RATIO:.0f}x): {'ok' if verdict else 'MISSED'}"
    )
    return 0 if verdict or not args.check else 1


if __name__ == "__main__":
    raise SystemExit(main())
