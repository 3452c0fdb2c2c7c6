"""The outbox: every mail mailflow sends goes out once, or waits where an admin can see it.

A mail gets its Message-ID once, spliced into its header block, and a record written durably
before any SMTP connection opens (DESIGN invariant 3); a mail whose Message-ID is already queued
is not queued again. The outbox is the one face of outgoing mail: it queues, takes the admin's
actions (`resend` an unknown or failed mail, `mark_sent` one the admin knows went out) and wakes
the delivery. Its parts do the rest: `delivery` sends what is due over SMTP and decides how each
attempt ended, `sent_folder` files copies in Sent and looks unknown outcomes up there, `records`
keeps the states and writes every change under the lane.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import secrets
import threading
from collections.abc import Callable
from email.utils import make_msgid, parseaddr
from typing import Any

from mailflow import faults
from mailflow.clock import Clock, iso
from mailflow.errors import UsageError
from mailflow.mailbox.pipeline import raw_message_id
from mailflow.outgoing.delivery import Delivery, Undeliverable
from mailflow.outgoing.records import (
    OutboxItem,
    OutboxRecords,
    OutboxRefused,
    PublicOutboxItem,
    as_outbox_item,
    public,
)
from mailflow.outgoing.sent_folder import SentFolder
from mailflow.settings.config import Config
from mailflow.store.base import Store

log = logging.getLogger("mailflow.outbox")

_HEADER_END = re.compile(rb"\r?\n\r?\n")


# -- Message-IDs, spliced into the original bytes ---------------------------------------------


def with_message_id(raw: bytes, domain: str, message_id: str | None = None
                    ) -> tuple[bytes, str]:
    """The raw mail with a Message-ID (its own, or `message_id` or a new one added as the
    header block's last line: every other byte stays as it was) and that Message-ID."""
    if not raw.strip():
        raise ValueError("an empty mail cannot be queued")
    existing = raw_message_id(raw)
    if existing:
        return raw, existing
    message_id = message_id or make_msgid(domain=domain)
    line = f"Message-ID: {message_id}".encode("ascii")
    end = _HEADER_END.search(raw)
    if end is None:  # headers only
        eol = b"\r\n" if raw.endswith(b"\r\n") or b"\r\n" in raw else b"\n"
        body = raw if raw.endswith((b"\n", b"\r")) else raw + eol
        return body + line + eol, message_id
    eol = b"\r\n" if raw[end.start() : end.start() + 2] == b"\r\n" else b"\n"
    return raw[: end.start()] + eol + line + raw[end.start() :], message_id


class Outbox:
    """Queue, admin actions, delivery rounds (`delivery`), Sent (`sent_folder`). Store writes go
    through `lane`."""

    def __init__(self, store: Store, clock: Clock, config: Config, lane: threading.RLock,
                 on_undeliverable: Undeliverable | None = None) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.lane = lane
        self.on_wake: Callable[[], object] | None = None
        records = OutboxRecords(store, clock, lane)
        self.sent_folder = SentFolder(records, config)
        self.delivery = Delivery(records, config, self.sent_folder, on_undeliverable)

    # -- queueing ---------------------------------------------------------------------------

    @property
    def sender(self) -> str:
        return self.config.smtp.from_ or self.config.mailbox.address

    @property
    def domain(self) -> str:
        if self.config.company.domains:
            return self.config.company.domains[0]
        return parseaddr(self.sender)[1].rpartition("@")[2] or "localhost"

    def queue(self, raw: bytes | None = None, *, to: list[str], purpose: str,
              candidate_id: str | None = None,
              build: Callable[[str], bytes] | None = None) -> OutboxItem:
        """Record a mail to send. Give `raw` bytes, or `build(message_id) -> bytes` to make a mail
        that carries its Message-ID. A mail whose Message-ID is already queued is not queued
        again: the existing record is returned."""
        if (raw is None) == (build is None):
            raise ValueError("give raw bytes or a build function, not both or neither")
        if not to:
            raise ValueError("a mail needs at least one recipient")
        if not self.sender:
            raise UsageError("no sender address: set [smtp] from or [mailbox] address")
        if build is not None:
            given = make_msgid(domain=self.domain)
            raw, message_id = with_message_id(build(given), self.domain, given)
        else:
            assert raw is not None
            raw, message_id = with_message_id(raw, self.domain)
        now = iso(self.clock.now())
        with self.lane, self.store.transaction():
            known = self.store.find("outbox", "message_id", message_id)
            if known:
                return as_outbox_item(known[0])
            record_id = secrets.token_hex(5)
            doc: OutboxItem = {
                "id": record_id, "message_id": message_id, "to": list(dict.fromkeys(to)),
                "from": self.sender, "purpose": purpose, "candidate_id": candidate_id,
                "state": "queued", "phase": None, "attempts": 0, "next_at": now,
                "last_error": None, "created_at": now, "updated_at": now, "sent_at": None,
                "unknown_since": None, "undeliverable": [], "filed_in_sent": False,
                "raw": base64.b64encode(raw).decode("ascii"),
            }
            self.store.put("outbox", record_id, doc)
        log.info("outbox %s: queued (%s) %s", record_id, purpose, message_id)
        faults.point("outbox:queued")
        self.wake()
        return doc

    def queue_command(self, args: dict[str, Any]) -> PublicOutboxItem:
        """The control channel's `outbox.queue`: raw (base64), to, purpose, candidate_id."""
        doc = self.queue(base64.b64decode(str(args["raw"])), to=[str(a) for a in args["to"]],
                         purpose=str(args.get("purpose", "mail")),
                         candidate_id=args.get("candidate_id"))
        return public(doc)

    def wake(self) -> None:
        """Ask for a delivery round now (the daemon's delivery task listens)."""
        if self.on_wake is not None:
            with contextlib.suppress(RuntimeError):  # the daemon's loop has ended
                self.on_wake()

    # -- admin actions ----------------------------------------------------------------------

    def resend(self, record_id: str) -> PublicOutboxItem:
        """An unknown or failed mail goes out again, with the same Message-ID (attempts reset,
        addresses refused before are tried again)."""
        doc = self._admin(record_id, ("unknown", "failed"), "resent", state="queued",
                          attempts=0, next_at=iso(self.clock.now()), last_error=None,
                          phase=None, unknown_since=None, undeliverable=[])
        self.wake()
        return doc

    def mark_sent(self, record_id: str) -> PublicOutboxItem:
        """The admin knows this mail went out: it is never sent (again) by mailflow."""
        return self._admin(record_id, ("unknown", "failed", "queued"), "marked sent",
                           state="sent", sent_at=iso(self.clock.now()), phase=None,
                           marked_by="admin")

    def _admin(self, record_id: str, allowed: tuple[str, ...], what: str,
               **changes: Any) -> PublicOutboxItem:
        with self.lane, self.store.transaction():
            doc = self.store.get("outbox", record_id)
            if doc is None:
                raise OutboxRefused(f"no outbox mail {record_id}")
            if doc["state"] not in allowed:
                raise OutboxRefused(f"{record_id} is {doc['state']}: only "
                                    f"{' or '.join(allowed)} mail can be {what}")
            if changes.get("state") == "queued" and "raw" not in doc:
                raise OutboxRefused(f"{record_id}: its body was removed (retention or erasure); "
                                    "it cannot be sent again")
            doc.update(changes, updated_at=iso(self.clock.now()))
            self.store.put("outbox", record_id, doc)
            if doc["state"] == "sent" and "raw" in doc:
                self.sent_folder.journal(as_outbox_item(doc))
        log.info("outbox %s: %s by the admin", record_id, what)
        return public(doc)

    # -- delivering -------------------------------------------------------------------------

    def deliver_due(self) -> int:
        """One delivery round (blocking; run it in a thread): see `Delivery.deliver_due`."""
        return self.delivery.deliver_due()

    def stop(self) -> None:
        """No new round starts; returns once the round in hand has finished."""
        self.delivery.stop()

    @property
    def alert(self) -> str | None:
        """A server-level refusal the admin must see (None once a mail goes out again)."""
        return self.delivery.alert
