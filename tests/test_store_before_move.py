"""Issue 15: a store written by the version before the package moved into subpackages (kept in
tests/data/store-before-move/, written by the code of commit 2eb1008) loads and works."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailflow.clock import FrozenClock
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.relay.ledger import ReferralLedger
from mailflow.store import open_store

FIXTURE = Path(__file__).resolve().parent / "data" / "store-before-move"
KEY = b"store-fixture-ledger-key"


@pytest.mark.parametrize("engine", ["sqlite", "tinydb"])
def test_an_old_store_loads_verifies_and_takes_new_work(engine: str, tmp_path: Path) -> None:
    data = tmp_path / engine
    shutil.copytree(FIXTURE / engine, data)
    store = open_store(data, engine)
    clock = FrozenClock(datetime(2026, 12, 1, tzinfo=UTC))
    try:
        pool = TalentPool(store, clock)
        assert store.count("candidates") == 12
        old = pool.by_email("c03@example.net")
        assert old is not None and old["relay_status"] == "invited" and old["relay_ref"]
        assert old["rejection"]["reason"] == "経験不足" and old["status"] == "rejected"
        ledger = ReferralLedger(store, clock, 10, lambda: KEY)
        assert ledger.verify() is None
        balance = ledger.balance()
        assert (balance.registrations, balance.slots_earned) == (11, 1)
        fresh, created = pool.apply(Applicant("新人 花子", "new@example.net", (), "経理", "",
                                              "direct"), "<new@example.net>")
        assert created and pool.by_email("new@example.net")["id"] == fresh["id"]
        last = pool.by_email("c11@example.net")
        ledger.credit_registration(last["id"], last["relay_ref"], "evt-11",
                                   "2026-12-01T10:00:00+09:00")
        assert ledger.verify() is None and ledger.balance().registrations == 12
    finally:
        store.close()
    reopened = open_store(data, engine, read_only=True)
    try:
        assert reopened.count("candidates") == 13
    finally:
        reopened.close()
