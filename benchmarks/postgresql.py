"""The follow-up scheduler tick on PostgreSQL, a big pool over several companies (issue 23, 6).

One throw-away PostgreSQL cluster on 127.0.0.1 (tests/postgres_server.py) holds `--companies`
companies in one schema (tenants: every row carries its company, row-level security shows each
store its own). `--candidates` are spread evenly over them: company c0 is seeded through the
store API (`followups_tick.prefill`: one rejected candidate, its event and one planned follow-up
row each), the others are server-side copies of its rows under their own company (`INSERT …
SELECT`, seconds instead of minutes). Seeding time is reported. Then c0's
`FollowUpScheduler.tick()` runs with `--due` rows due (ticks until the hour is empty), and the same
on a schema of its own holding one company of `--baseline` candidates, in the same run.
Figure: the time per due row on the big pool against the
small one — the tick must cost in proportion to what is due, not to the pool. Beside it, the
same tick on a SQLite store of the baseline size, in the same run.

    python benchmarks/postgresql.py [--candidates 1000000] [--companies 10] [--baseline 10000]
                                    [--due 100,1000]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg
from figures import Figure, emit
from followups_tick import NOW, prefill, tick_config
from postgres_server import Postgres

from mailflow.clock import FrozenClock
from mailflow.followups.scheduler import FollowUpScheduler
from mailflow.outgoing.outbox import Outbox
from mailflow.settings.config import Config
from mailflow.store.postgresql import PostgresStore
from mailflow.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from collections.abc import Iterator

TARGET_RATIO = 1.5  # per due row, big pool against small, on a shared 2-core machine


class SeedingStore(PostgresStore):
    """The store's own `put`/`append` (same encoding, same index rows) into a fresh schema,
    with the rows sent in one `executemany` per transaction instead of a round trip each: the
    schema is new, so there is no old row to look up."""

    def __init__(self, dsn: str, company: str) -> None:
        super().__init__(dsn, company=company)
        self._docs: list[tuple[str, str, str]] = []
        self._pairs: list[tuple[str, str, str, str]] = []
        self._seqs: dict[str, int] = {}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._conn is not None:
            yield
            return
        with super().transaction():
            yield
            assert self._conn is not None
            with self._conn.cursor() as cur:
                cur.executemany("INSERT INTO mf_docs(kind, key, doc) VALUES (%s, %s, %s)",
                                self._docs)
                cur.executemany("INSERT INTO mf_idx(kind, field, value, key) VALUES "
                                "(%s, %s, %s, %s) ON CONFLICT DO NOTHING", self._pairs)
            self._docs, self._pairs = [], []

    def _get_raw(self, kind: str, key: str) -> str | None:
        return None

    def _upsert(self, kind: str, key: str, text: str) -> None:
        self._docs.append((kind, key, text))

    def _add_index(self, kind: str, key: str, pairs: set[tuple[str, str]]) -> None:
        self._pairs += [(kind, f, v, key) for f, v in sorted(pairs)]

    def _last_seq(self, kind: str) -> int:
        self._seqs[kind] = self._seqs.get(kind, 0) + 1
        return self._seqs[kind] - 1


def seed(dsn: str, company: str, candidates: int, dues: list[int]) -> float:
    """`candidates` of `company` through the store API. Seconds taken."""
    started = time.perf_counter()
    store = SeedingStore(dsn, company)
    try:
        prefill(store, candidates, dues)
    finally:
        store.close()
    return time.perf_counter() - started


def clone(pg: Postgres, dsn: str, source: str, company: str) -> float:
    """Another company with a copy of `source`'s rows, server-side (as the administrator, whom
    row-level security does not restrict). Seconds taken."""
    started = time.perf_counter()
    schema = re.search(r"search_path=(\w+)", dsn)
    assert schema is not None
    with psycopg.connect(pg.dsn(schema=schema[1]), autocommit=True) as conn, conn.transaction():
        conn.execute("INSERT INTO mf_docs(company, kind, key, doc) SELECT %s, kind, key, doc "
                     "FROM mf_docs WHERE company = %s", (company, source))
        conn.execute("INSERT INTO mf_idx(company, kind, field, value, key) SELECT %s, kind, "
                     "field, value, key FROM mf_idx WHERE company = %s", (company, source))
        conn.execute("INSERT INTO mf_indexes(company, indexes) SELECT %s, indexes FROM "
                     "mf_indexes WHERE company = %s", (company, source))
    return time.perf_counter() - started


def analyze(pg: Postgres, dsn: str) -> None:
    schema = re.search(r"search_path=(\w+)", dsn)
    assert schema is not None
    with psycopg.connect(pg.dsn(schema=schema[1]), autocommit=True) as conn:
        conn.execute("ANALYZE mf_docs")
        conn.execute("ANALYZE mf_idx")


def tick_hours(store: PostgresStore | SqliteStore, company: str, cfg: Config,
               dues: list[int]) -> list[float]:
    """Seconds to work off each hour's due rows (ticks until nothing of the hour is left)."""
    try:
        clock = FrozenClock(NOW)
        lane = threading.RLock()
        scheduler = FollowUpScheduler(store, clock, cfg, Outbox(store, clock, cfg, lane), lane)
        spent = []
        for hour, due in enumerate(dues):
            clock.set(NOW + timedelta(hours=hour))
            started = time.perf_counter()
            done = 0
            while True:
                result = scheduler.tick()
                if not any(result.values()):
                    break
                done += sum(result.values())
            spent.append(time.perf_counter() - started)
            print(f"  {company}: hour {hour}, {due:,} due, {done:,} done", file=sys.stderr)
        return spent
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--companies", type=int, default=10)
    parser.add_argument("--baseline", type=int, default=10_000)
    parser.add_argument("--due", default="100,1000", help="rows due per timed hour")
    args = parser.parse_args()
    dues = [int(d) for d in args.due.split(",")]
    per_company = args.candidates // args.companies
    with tempfile.TemporaryDirectory(prefix="pg-bench-") as tmp, Postgres() as pg:
        cfg = tick_config(Path(tmp))
        print(f"seeding {per_company:,} candidates into c0 …", file=sys.stderr)
        shared, alone = pg.schema(), pg.schema()
        seeded = seed(shared, "c0", per_company, dues)
        cloned = sum(clone(pg, shared, "c0", f"c{k}") for k in range(1, args.companies))
        base_seeded = seed(alone, "small", args.baseline, dues)
        analyze(pg, shared)
        analyze(pg, alone)
        big = tick_hours(PostgresStore(shared, company="c0"), "c0", cfg, dues)
        small = tick_hours(PostgresStore(alone, company="small"), "small", cfg, dues)
        lite = SqliteStore(Path(tmp) / "mailflow.sqlite3")
        prefill(lite, args.baseline, dues)
        sqlite = tick_hours(lite, "sqlite", cfg, dues)
    load = os.getloadavg()[0]
    print(f"\nPostgreSQL, {args.companies} companies × {per_company:,} candidates "
          f"(seeded c0 in {seeded:.0f} s through the store API, {args.companies - 1} copies in "
          f"{cloned:.0f} s; baseline {args.baseline:,} in {base_seeded:.0f} s); "
          f"Python {platform.python_version()}; load {load:.1f}\n")
    print("| due | big pool | ms per row | baseline | ms per row | ratio | SQLite, baseline size |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    figures = []
    for due, b, s, q in zip(dues, big, small, sqlite, strict=True):
        ratio = b / s
        print(f"| {due:,} | {b * 1000:,.0f} ms | {b * 1000 / due:.2f} | {s * 1000:,.0f} ms | "
              f"{s * 1000 / due:.2f} | {ratio:.2f}x | {q * 1000 / due:.2f} ms per row |")
        figures.append(Figure("postgresql", f"tick on PostgreSQL, {due:,} due of "
                              f"{args.baseline:,}, ms per row", s * 1000 / due, "ms",
                              "the same on SQLite", q * 1000 / due, s / q, None))
        figures.append(Figure("postgresql", f"tick, {due:,} due of {args.candidates:,} over "
                              f"{args.companies} companies, ms per row", b * 1000 / due, "ms",
                              f"per row, {args.baseline:,} candidates", s * 1000 / due, ratio,
                              TARGET_RATIO, "<="))
    figures.append(Figure("postgresql", f"seeding {args.candidates:,} candidates", seeded + cloned,
                          "s", "", None, None, None))
    emit(*figures)


if __name__ == "__main__":
    main()
