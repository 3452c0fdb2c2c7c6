"""One follow-up scheduler tick on a large pool (issue 11).

A SQLite store holds 100,000 rejected candidates (one `rejected` event each, already planned:
the planner's cursor is at the end of the events log) and one planned follow-up row per
candidate under 5 rules that send mail; 100 of those rows are due now, the rest later. One
`FollowUpScheduler.tick()` plans (nothing new), claims the 100 due rows with `store.below`,
re-checks each rule, renders the template, issues an unsubscribe token and queues the mail in the
outbox (no SMTP: queueing is what the tick does). Measured beside it in the same run: the time
to merely iterate the candidates from the store (`store.scan`), and a tick when nothing is due.
Time with `time.perf_counter`. `--due 100,1000,10000` times one hour's due rows each (ticks
until nothing of the hour is left: a tick takes at most its batch) and reports the cost per row.

Target: the tick costs in proportion to what is due, not to the pool (well under one second).

    python benchmarks/followups_tick.py [--candidates 100000] [--due 100,1000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import Figure, emit

from mailflow.clock import FrozenClock, iso
from mailflow.followups.scheduler import CURSOR, FollowUpScheduler
from mailflow.outgoing.outbox import Outbox
from mailflow.settings.config import Config, load_config
from mailflow.starter import SHIPPED_TEMPLATES
from mailflow.store.sqlite import SqliteStore

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2025, 11, 5, 11, 0, tzinfo=TOKYO)  # a Wednesday, inside the window
RULES = 5
TARGET_SECONDS = 1.0


def rules_file(n: int) -> str:
    return "\n".join(f"""[[followup]]
name = "rule-{i}"
after = {{ event = "rejected", delay = "{i + 1}mo" }}
when = {{ status = ["rejected"], rescout_ok = true, reapplied = false }}
send = "rescout.txt.j2"
subject = "【{{{{ company_name }}}}】ご案内 {i}"
purpose = "rescout"
catch_up = "30d"
""" for i in range(n))


def candidate(i: int) -> dict[str, Any]:
    at = iso(NOW - timedelta(days=200))
    return {"id": f"c{i:07d}", "name": f"候補者 {i}", "name_normalized": f"候補者{i}",
            "emails": [f"candidate{i}@example.jp"], "phones": [], "source": "direct",
            "status": "rejected", "applications": [{"position": "営業", "applied_at": at,
                                                    "source": "direct", "message_ids": []}],
            "rejection": {"id": f"rj{i}", "reason": "", "at": at, "stage": "",
                          "rescout": True, "message_id": None},
            "rescout_ok": True, "tags": [], "relay_status": "invited", "relay_ref": f"r{i:08d}",
            "reapplied": False, "consents": {}, "message_ids": [], "created_at": at,
            "updated_at": at}


def prefill(store: SqliteStore, n: int, groups: list[int]) -> None:
    """n candidates with one planned row each; group g of `groups[g]` rows is due at hour g
    (spread over the pool), the rest from tomorrow on."""
    at = iso(NOW - timedelta(days=200))
    due = sum(groups)
    step = max(1, n // due)
    hour_of = [g for g, size in enumerate(groups) for _ in range(size)]
    for start in range(0, n, 10_000):
        with store.transaction():
            for i in range(start, min(n, start + 10_000)):
                doc = candidate(i)
                store.put("candidates", doc["id"], doc)
                store.append("events", {"candidate_id": doc["id"], "type": "rejected", "at": at,
                                        "data": {}})
                k = i // step if i % step == 0 else due
                when = (NOW + timedelta(hours=hour_of[k]) - timedelta(minutes=5)
                        if k < due else NOW + timedelta(days=1 + i % 300))
                rule = f"rule-{i % RULES}"
                row_id = f"{rule}:{doc['id']}"
                store.put("followups", row_id, {
                    "id": row_id, "rule": rule, "candidate_id": doc["id"], "due_at": iso(when),
                    "planned_due_at": iso(when), "state": "planned", "reason": "",
                    "trigger": {"field": "rejection.at", "at": at}, "created_at": at,
                    "updated_at": at})
        print(f"  prefilled {min(n, start + 10_000):,}", file=sys.stderr)
    with store.transaction():
        store.put("checkpoints", CURSOR, {"seq": n, "at": at})


def tick_config(root: Path) -> Config:
    """The config the timed ticks run with: the benchmark's rules, no hourly limit to speak of."""
    (root / "rules").mkdir()
    (root / "rules" / "followups.toml").write_text(rules_file(RULES), encoding="utf-8")
    (root / "config.toml").write_text(f"""
[mailbox]
address = "jobs@example.co.jp"
[store]
path = "data"
[rules]
dir = "rules"
templates_dir = "{SHIPPED_TEMPLATES}"
[privacy]
notified_purposes = ["selection", "talent_pool", "rescout"]
[followups]
per_hour = 1000000
""", encoding="utf-8")
    return load_config(root / "config.toml")


def timed(action: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--due", default="100", help="rows due per timed tick, comma-separated")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    dues = [int(d) for d in args.due.split(",")]
    root = Path(tempfile.mkdtemp(prefix="followups-bench-", dir=args.dir))
    try:
        config = tick_config(root)
        (root / "data").mkdir()
        store = SqliteStore(root / "data" / "mailflow.sqlite3")
        print(f"prefilling {args.candidates:,} candidates …", file=sys.stderr)
        prefill(store, args.candidates, dues)
        clock = FrozenClock(NOW)
        lane = threading.RLock()
        scheduler = FollowUpScheduler(store, clock, config, Outbox(store, clock, config, lane),
                                      lane)

        def iterate() -> int:
            return sum(1 for _ in store.scan("candidates"))

        def ticks() -> tuple[int, dict[str, int]]:
            """Tick until nothing of this hour is left (a tick takes at most its batch)."""
            total: dict[str, int] = {}
            n = 0
            while True:
                done = scheduler.tick()
                n += 1
                if not any(done.values()):
                    return n - 1, total
                for key, value in done.items():
                    total[key] = total.get(key, 0) + value

        seconds, result = timed(iterate)
        results = [("iterate the candidates (`store.scan`)", seconds, result, 0)]
        for hour, due in enumerate(dues):
            clock.set(NOW + timedelta(hours=hour))
            seconds, (count, done) = timed(ticks)
            results.append((f"{due:,} due ({count} ticks)", seconds, done, due))
        seconds, result = timed(scheduler.tick)
        results.append(("one tick, nothing due", seconds, result, 0))
        store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{args.candidates:,} candidates, {RULES} rules, {args.candidates:,} planned rows; "
          f"SQLite; Python {platform.python_version()} on {platform.machine()}\n")
    print("| what | time | ms per due row | result |")
    print("|---|---:|---:|---|")
    for name, seconds, result, due in results:
        per_row = f"{seconds * 1000 / due:.2f}" if due else "–"
        print(f"| {name} | {seconds * 1000:,.1f} ms | {per_row} | {result} |")
    timed_rows = [(due, seconds) for _name, seconds, _result, due in results if due]
    first_due, first_seconds = timed_rows[0]
    emit(*(Figure("followups_tick", f"tick, {due:,} due of {args.candidates:,}, ms per row",
                  seconds * 1000 / due, "ms", f"per row with {first_due:,} due",
                  first_seconds * 1000 / first_due, (seconds / due) / (first_seconds / first_due),
                  1.0, "<=") for due, seconds in timed_rows[1:]),
         Figure("followups_tick", f"tick, {first_due:,} due of {args.candidates:,}",
                first_seconds * 1000, "ms", "iterate the candidates", results[0][1] * 1000,
                None, TARGET_SECONDS * 1000, "<=", "value"))


if __name__ == "__main__":
    main()
