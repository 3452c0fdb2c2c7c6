"""The cost of erasing one person (`mailflow erase`) and of a purge, as the pool grows.

A pool of N candidates (each: 5 timeline events, a token, a sent outbox mail with its body, a
résumé file) in a fresh data directory, for each engine. Then one candidate is erased
(`privacy.erase.erase`: the store work in one transaction, then `scrub()`), and separately a
purge erases 10% of the pool. Prints a markdown table: the store's size before and after each
(after the scrub: SQLite's VACUUM gives the freed pages back), the erasure's time split into the
store work and the scrub (SQLite: WAL checkpoint, VACUUM, checkpoint; TinyDB: nothing to do),
and the purge's time (scrub included).

    python benchmarks/erase.py [--sizes 1000,10000] [--engines sqlite,tinydb]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailflow.clock import FrozenClock, iso
from mailflow.intake.documents import DocumentShelf
from mailflow.mail.parse import Attachment
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.privacy import erase as erasure
from mailflow.privacy.purge import purge
from mailflow.settings.config import Config
from mailflow.store import open_store
from mailflow.store.base import Store

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def fill(store: Store, data_dir: Path, size: int) -> None:
    clock = FrozenClock(NOW - timedelta(days=30))
    pool, shelf = TalentPool(store, clock), DocumentShelf(data_dir)
    mail = base64.b64encode(("件名: 選考結果\n" + "本文 " * 400).encode()).decode()
    with store.transaction():
        for n in range(size):
            candidate, _ = pool.apply(Applicant(f"候補 {n:05d}", f"c{n}@example.net",
                                                (f"090{n:08d}",), "営業", "", "direct"),
                                      f"<app{n}@example.net>")
            data = f"%PDF-1.4 resume {n}\n".encode() * 40
            document = Attachment("履歴書.pdf", "application/pdf", len(data),
                                  hashlib.sha256(data).hexdigest(), "2", data=data)
            pool.add_documents(candidate, [shelf.keep(document, None, iso(clock.now()))])
            pool.record_rejection(candidate, "経験不足", "書類", None, None)
            store.put("tokens", f"tok{n}", {"candidate_id": candidate["id"], "relay_ref": n})
            store.put("outbox", f"o{n}", {"id": f"o{n}", "to": [f"c{n}@example.net"],
                                          "state": "sent", "candidate_id": candidate["id"],
                                          "sent_at": iso(clock.now()), "raw": mail})


def size_of(data_dir: Path, engine: str) -> int:
    names = ("mailflow.sqlite3", "mailflow.sqlite3-wal") if engine == "sqlite" \
        else ("mailflow.json",)
    return sum((data_dir / n).stat().st_size for n in names if (data_dir / n).exists())


def measure(engine: str, size: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        store = open_store(data_dir, engine)
        clock = FrozenClock(NOW)
        try:
            fill(store, data_dir, size)
            store.scrub()
            before = size_of(data_dir, engine)
            started = time.perf_counter()
            candidate = TalentPool(store, clock).lookup(f"c{size // 2}@example.net")
            assert candidate is not None
            erasure.erase_candidates(store, clock, data_dir, [candidate],
                                     {candidate["id"]: "benchmark"}, "bench")
            worked = time.perf_counter()
            store.scrub()
            scrubbed = time.perf_counter()
            after = size_of(data_dir, engine)
            config = Config.model_validate({"store": {"path": str(data_dir), "engine": engine},
                                            "privacy": {"notified_purposes": ["selection"]}})
            victims = [c for n, c in enumerate(TalentPool(store, clock).all()) if n % 10 == 0]
            for c in victims:  # 10% of the pool past retention
                c["updated_at"] = c["created_at"] = iso(NOW - timedelta(days=800))
                store.put("candidates", c["id"], c)
            purge_started = time.perf_counter()
            done = purge(store, clock, config, "bench")
            purged = time.perf_counter() - purge_started
            after_purge = size_of(data_dir, engine)
        finally:
            store.close()
    return (f"| {engine} | {size:,} | {before / 1e6:.1f} MB | {after / 1e6:.1f} MB | "
            f"{(worked - started) * 1000:.0f} ms | {(scrubbed - worked) * 1000:.0f} ms | "
            f"{done.report['counts'].get('candidate', 0)} in {purged:.1f} s | "
            f"{after_purge / 1e6:.1f} MB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--engines", default="sqlite,tinydb")
    args = parser.parse_args()
    print(f"{platform.platform()}, Python {platform.python_version()}\n")
    print("| engine | pool | store before | after erasing 1 | erase 1 (store) | scrub | "
          "purge 10% | after purge |")
    print("|---|---|---|---|---|---|---|---|")
    for engine in args.engines.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            print(measure(engine, size), flush=True)


if __name__ == "__main__":
    main()
