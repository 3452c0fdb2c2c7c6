"""The outbox's records in the store: their states, what callers see of one, and how one changes.

Every change goes through `OutboxRecords.update`, under the outbox's lane and in one
transaction, and stamps `updated_at`; a record that is gone is an `OutboxRefused`.

States: queued → sending → sent | queued (temporary failure, backoff; or server-level refusal,
with an admin alert) | failed (every recipient or the message refused for good) | unknown.

A record is an `OutboxItem` (kind "outbox"); what callers see of one, without its raw bytes, is a
`PublicOutboxItem`. A document read from the store becomes an item in one place,
`as_outbox_item`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict, cast

from mailflow.clock import Clock, iso
from mailflow.errors import MailflowError
from mailflow.store.base import Doc, Store

STATES = ("queued", "sending", "sent", "failed", "unknown")


class OutboxRefused(MailflowError):
    """An admin action the record does not allow (unknown id, wrong state): exit code 1."""


class Refusal(TypedDict):
    """A recipient the server refused for good, with its reply."""

    address: str
    reply: str


# "from" is a keyword, hence the functional form.
PublicOutboxItem = TypedDict("PublicOutboxItem", {
    "id": str,
    "message_id": str,
    "to": list[str],
    "from": str,
    "purpose": str,  # "notify-hr", "relay-invitation", "followup:RULE", …
    "candidate_id": str | None,
    "state": str,  # one of STATES
    "phase": str | None,  # while sending: "connecting", then "data_started"
    "attempts": int,
    "next_at": str,
    "last_error": str | None,
    "created_at": str,
    "updated_at": str,
    "sent_at": str | None,
    "unknown_since": str | None,
    "undeliverable": list[Refusal],
    "filed_in_sent": bool,
    "marked_by": NotRequired[str],  # "admin": `mark_sent`
    "found_in_sent": NotRequired[bool],  # an unknown outcome found in Sent by Message-ID
})


class OutboxItem(PublicOutboxItem):
    """A mail in the outbox, as stored: the record and the mail's bytes."""

    raw: str  # base64 of the mail's bytes


def as_outbox_item(doc: Doc) -> OutboxItem:
    """An outbox document read from the store, as the item it is."""
    return cast(OutboxItem, doc)


def public(doc: Mapping[str, Any]) -> PublicOutboxItem:
    """A record without its raw bytes (for listings and answers)."""
    return cast(PublicOutboxItem, {key: value for key, value in doc.items() if key != "raw"})


class OutboxRecords:
    """The `outbox` kind of `store`, written under `lane`."""

    def __init__(self, store: Store, clock: Clock, lane: threading.RLock) -> None:
        self.store = store
        self.clock = clock
        self.lane = lane

    def update(self, record_id: str, **changes: Any) -> OutboxItem:
        """The record with `changes` applied and `updated_at` stamped, written back."""
        with self.lane, self.store.transaction():
            doc = self.store.get("outbox", record_id)
            if doc is None:
                raise OutboxRefused(f"no outbox mail {record_id}")
            doc.update(changes, updated_at=iso(self.clock.now()))
            self.store.put("outbox", record_id, doc)
            return as_outbox_item(doc)
