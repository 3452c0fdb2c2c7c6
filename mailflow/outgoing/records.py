"""The outbox's records in the store: their states, what callers see of one, and how one changes.

Every change goes through `OutboxRecords.update`, under the outbox's lane and in one
transaction, and stamps `updated_at`; a record that is gone is an `OutboxRefused`.

States: queued → sending → sent | queued (temporary failure, backoff; or server-level refusal,
with an admin alert) | failed (every recipient or the message refused for good) | unknown.
"""

from __future__ import annotations

import threading
from typing import Any

from mailflow.clock import Clock, iso
from mailflow.errors import MailflowError
from mailflow.store.base import Doc, Store

STATES = ("queued", "sending", "sent", "failed", "unknown")


class OutboxRefused(MailflowError):
    """An admin action the record does not allow (unknown id, wrong state): exit code 1."""


def public(doc: Doc) -> Doc:
    """A record without its raw bytes (for listings and answers)."""
    return {key: value for key, value in doc.items() if key != "raw"}


class OutboxRecords:
    """The `outbox` kind of `store`, written under `lane`."""

    def __init__(self, store: Store, clock: Clock, lane: threading.RLock) -> None:
        self.store = store
        self.clock = clock
        self.lane = lane

    def update(self, record_id: str, **changes: Any) -> Doc:
        """The record with `changes` applied and `updated_at` stamped, written back."""
        with self.lane, self.store.transaction():
            doc = self.store.get("outbox", record_id)
            if doc is None:
                raise OutboxRefused(f"no outbox mail {record_id}")
            doc.update(changes, updated_at=iso(self.clock.now()))
            self.store.put("outbox", record_id, doc)
            return doc
