"""On a store shared by several mailboxes' daemons (PostgreSQL), each mailbox keeps its own
checkpoints and its own draft-rewrite journal: found by tests/chaos/test_two_daemons.py, where
two daemons overwrote each other's INBOX checkpoint and appended each other's drafts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from postgres_server import Postgres

from mailflow.clock import FrozenClock
from mailflow.mailbox.handoff import Intake
from mailflow.mailbox.pipeline import Pipeline
from mailflow.rejection.drafts import DraftDesk, Rewritten
from mailflow.store import open_store

A, B = "imap://a@127.0.0.1:143/INBOX", "imap://b@127.0.0.1:143/INBOX"


class Drafts:
    """A Drafts folder that records what the desk asks of it (the marker is already there)."""

    def __init__(self) -> None:
        self.searched: list[list[Any]] = []

    def search(self, criteria: list[Any]) -> list[int]:
        self.searched.append(criteria)
        return [1]

    def select(self, folder: str) -> None:
        pass


def test_two_mailboxes_keep_their_own_checkpoints(postgres: Postgres, tmp_path: Path) -> None:
    dsn, clock = postgres.schema(), FrozenClock(datetime(2025, 4, 1, tzinfo=UTC))
    a_store = open_store(tmp_path / "a", "postgresql", dsn=dsn, holder=A)
    b_store = open_store(tmp_path / "b", "postgresql", dsn=dsn, holder=B)
    try:
        a = Intake(a_store, Pipeline([]), clock, mailbox=A)
        b = Intake(b_store, Pipeline([]), clock, mailbox=B)
        a.start_from("INBOX", 7, 10)
        b.start_from("INBOX", 9, 3)
        point_a, point_b = a.checkpoint("INBOX"), b.checkpoint("INBOX")
        assert point_a is not None and point_b is not None
        assert (point_a.uidvalidity, point_a.last_uid) == (7, 10)
        assert (point_b.uidvalidity, point_b.last_uid) == (9, 3)
        assert a.checkpoint_key("INBOX") != b.checkpoint_key("INBOX")
    finally:
        a_store.close()
        b_store.close()


def test_a_single_mailbox_store_keeps_the_folder_as_its_key(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        Intake(store, Pipeline([]), FrozenClock(datetime(2025, 4, 1, tzinfo=UTC))).start_from(
            "INBOX", 7, 10)
        assert store.get("checkpoints", "INBOX") is not None  # existing stores read on
    finally:
        store.close()


def test_a_daemon_finishes_only_its_own_mailboxs_journaled_drafts(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    clock = FrozenClock(datetime(2025, 4, 1, tzinfo=UTC))
    try:
        store.put("journal", "k1", {"key": "k1", "state": "journaled", "kind": "draft-rewrite",
                                    "folder": "Drafts", "mailbox": A, "uidvalidity": 1,
                                    "old_uids": [], "marker": "rj_1", "raw": ""})

        def desk(mailbox: str) -> DraftDesk:
            return DraftDesk(store, clock, lambda raw: Rewritten(None, "", ""), 0,
                             threading.RLock(), mailbox=mailbox)

        other = Drafts()
        desk(B)._finish_journaled(other, "Drafts", 1)  # type: ignore[arg-type]
        assert other.searched == []  # B's Drafts never sees A's draft
        assert (store.get("journal", "k1") or {})["state"] == "journaled"
        own = Drafts()
        desk(A)._finish_journaled(own, "Drafts", 1)  # type: ignore[arg-type]
        assert own.searched and (store.get("journal", "k1") or {})["state"] == "done"
    finally:
        store.close()
