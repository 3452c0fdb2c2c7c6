"""Many daemons on one PostgreSQL schema: one writer per holder (a daemon's mailbox), shared
queues claimed with `FOR UPDATE SKIP LOCKED`, a dead holder's claims taken over, named locks
that serialise writers of different holders (the ledger's chain)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from postgres_server import Postgres

from mailflow.errors import StoreError
from mailflow.store import open_store
from mailflow.store.postgresql import PostgresStore

A, B = "imap://a@127.0.0.1:993/INBOX", "imap://b@127.0.0.1:993/INBOX"


def test_writers_for_other_mailboxes_share_a_schema_and_one_mailbox_has_one_writer(
        postgres: Postgres, tmp_path: Path) -> None:
    dsn = postgres.schema()
    first = open_store(tmp_path / "a", "postgresql", dsn=dsn, holder=A)
    try:
        with pytest.raises(StoreError, match=f"another writer for {A}"):
            open_store(tmp_path / "a2", "postgresql", dsn=dsn, holder=A)
        other = open_store(tmp_path / "b", "postgresql", dsn=dsn, holder=B)
        other.put("outbox", "o1", {"id": "o1", "state": "queued"})
        other.close()
        assert first.get("outbox", "o1") == {"id": "o1", "state": "queued"}
    finally:
        first.close()
    open_store(tmp_path / "a2", "postgresql", dsn=dsn, holder=A).close()  # released on close


def test_a_live_holders_claims_are_skipped_and_a_dead_holders_are_taken_over(
        postgres: Postgres) -> None:
    dsn = postgres.schema()
    a, b = PostgresStore(dsn, holder=A), PostgresStore(dsn, holder=B)
    try:
        for i in range(4):
            a.put("outbox", f"o{i}", {"id": f"o{i}", "state": "queued"})
        assert [d["id"] for d in a.claim("outbox", "state", "queued", limit=2)] == ["o0", "o1"]
        taken = b.claim("outbox", "state", "queued", limit=10)
        assert [(d["id"], d["claimed_by"]) for d in taken] == [("o2", B), ("o3", B)]
        a.close()  # its lease is free: its claims are the next claimer's
        taken = b.claim("outbox", "state", "queued", limit=10)
        assert [(d["id"], d["claimed_by"]) for d in taken] == [(f"o{i}", B) for i in range(4)]
    finally:
        a.close()
        b.close()
    again = PostgresStore(dsn, holder=A)  # the dead holder back: the claims are B's now
    try:
        assert [d["claimed_by"] for d in again.find("outbox", "state", "queued")] == [B] * 4
    finally:
        again.close()


def test_concurrent_claims_never_hand_one_document_to_two_holders(postgres: Postgres) -> None:
    dsn = postgres.schema()
    stores = [PostgresStore(dsn, holder=h) for h in (A, B)]
    try:
        with stores[0].transaction():
            for i in range(200):
                stores[0].put("outbox", f"o{i:03}", {"id": f"o{i:03}", "state": "queued"})
        got: dict[str, list[str]] = {A: [], B: []}

        def drain(store: PostgresStore) -> None:
            while True:
                with store.transaction():  # claimed, then taken off the queue: one transaction
                    docs = store.claim("outbox", "state", "queued", limit=7)
                    for doc in docs:
                        store.put("outbox", doc["id"], {**doc, "state": "sending"})
                if not docs:
                    return
                got[store.holder] += [d["id"] for d in docs]
        threads = [threading.Thread(target=drain, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        claimed = got[A] + got[B]
        assert sorted(claimed) == [f"o{i:03}" for i in range(200)]  # each once
        assert got[A] and got[B]
    finally:
        for s in stores:
            s.close()


def test_a_named_lock_serialises_two_holders_read_then_append(postgres: Postgres) -> None:
    """The ledger's pattern: read the head, write the next — under the lock, never a fork."""
    dsn = postgres.schema()
    stores = [PostgresStore(dsn, holder=h) for h in (A, B)]
    try:
        stores[0].put("settings", "head", {"n": 0})

        def bump(store: PostgresStore) -> None:
            for _ in range(50):
                with store.transaction():
                    store.lock_until_commit("head")
                    head = store.get("settings", "head") or {"n": 0}
                    store.put("settings", "head", {"n": head["n"] + 1})
        threads = [threading.Thread(target=bump, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert stores[1].get("settings", "head") == {"n": 100}
    finally:
        for s in stores:
            s.close()
