"""The outbox's side of the Sent folder: a copy of each sent mail filed once, unknown ones found.

Where the provider files sent mail itself (`[mailbox] provider_files_sent`), a record whose
outcome is unknown is looked up in Sent by Message-ID (every `lookup_seconds`, for
`lookup_window_seconds` after the attempt): found, it is sent, and never resent. Otherwise a
sent mail is journaled for filing (`FILING`), in the transaction that marks it sent, and a copy
is appended to Sent, once: Sent is searched for its Message-ID before appending. A Sent folder
that cannot be reached is tried again after `imap_retry_seconds`; the journal keeps the work.
"""

from __future__ import annotations

import base64
import logging
import time

from imapclient.exceptions import IMAPClientError

from mailflow import faults
from mailflow.clock import iso, parse_iso
from mailflow.errors import MissingSecret
from mailflow.mailbox.imap import Mailbox, MailboxError
from mailflow.outgoing.records import OutboxItem, OutboxRecords
from mailflow.settings.config import Config
from mailflow.store import mailbox_scope
from mailflow.store.base import Doc

log = logging.getLogger("mailflow.outbox")

FILING = "sent-filing"  # journal kind: a copy of a sent mail still to be appended to Sent


class SentFolder:
    """File copies of sent mail in Sent; look unknown ones up there. Writes go through
    `records`."""

    def __init__(self, records: OutboxRecords, config: Config) -> None:
        self.records = records
        self.store = records.store
        self.clock = records.clock
        self.lane = records.lane
        self.config = config
        self.lookup_seconds = 30.0  # provider_files_sent: how often an unknown one is looked up
        self.lookup_window_seconds = 86400.0  # … and for how long after the attempt
        self.imap_retry_seconds = 30.0
        self._imap_retry_at = 0.0
        self._looked_up: dict[str, float] = {}
        # on a store several mailboxes' daemons share, a copy goes to the Sent of the mailbox
        # that sent it: each daemon files only its own journal's copies
        self.mailbox = mailbox_scope(config)

    def journal(self, doc: OutboxItem) -> None:
        """Journal a copy of this sent mail for filing (call it in the transaction that marks
        the record sent); nothing where the provider files it, or once it is filed."""
        if self.config.mailbox.provider_files_sent or doc.get("filed_in_sent"):
            return
        key = f"outbox-file:{doc['id']}"
        self.store.put("journal", key, {"key": key, "kind": FILING, "state": "journaled",
                                        "outbox_id": doc["id"], "at": iso(self.clock.now()),
                                        "mailbox": self.mailbox})

    def work(self) -> None:
        """File what is journaled and look up what is due, in one IMAP session (if any)."""
        jobs = [j for j in self.store.find("journal", "state", "journaled")
                if j.get("kind") == FILING and j.get("mailbox", "") == self.mailbox]
        lookups = self._lookups_due()
        if not (jobs or lookups) or time.monotonic() < self._imap_retry_at:
            return
        mailbox: Mailbox | None = None
        try:
            mailbox = Mailbox(self.config.mailbox, self.config.imap_password())
            mailbox.connect()
            folder = mailbox.folder("sent", self.config.mailbox.sent)
            mailbox.ensure(folder)
            mailbox.select(folder)
            for job in jobs:
                self._file(mailbox, folder, job)
            for record_id in lookups:
                self._look_up(mailbox, record_id)
        except (MailboxError, IMAPClientError, OSError, MissingSecret) as exc:
            log.warning("outbox: Sent folder not reachable (%s); trying again in %.0fs",
                        exc, self.imap_retry_seconds)
            self._imap_retry_at = time.monotonic() + self.imap_retry_seconds
        finally:
            if mailbox is not None:
                mailbox.close()

    def _file(self, mailbox: Mailbox, folder: str, job: Doc) -> None:
        doc = self.store.get("outbox", job["outbox_id"])
        if doc is not None and "raw" not in doc:
            doc = None  # its body was removed (retention or erasure): nothing left to file
        if doc is not None and not mailbox.search(["HEADER", "Message-ID", doc["message_id"]]):
            when = parse_iso(doc["sent_at"]) if doc.get("sent_at") else None
            mailbox.append(folder, base64.b64decode(doc["raw"]), [b"\\Seen"], when)
            faults.point("outbox:filed")
            log.info("outbox %s: copy filed in Sent", doc["id"])
        with self.lane, self.store.transaction():
            if doc is not None:
                self.records.update(doc["id"], filed_in_sent=True)
            self.store.put("journal", job["key"], {**job, "state": "done",
                                                   "done_at": iso(self.clock.now())})

    def _lookups_due(self) -> list[str]:
        if not self.config.mailbox.provider_files_sent:
            return []
        now, ticks = self.clock.now(), time.monotonic()
        due = []
        for doc in self.store.find("outbox", "state", "unknown"):
            since = parse_iso(doc["unknown_since"] or doc["updated_at"])
            if (now - since).total_seconds() > self.lookup_window_seconds:
                continue
            if ticks - self._looked_up.get(doc["id"], float("-inf")) >= self.lookup_seconds:
                due.append(doc["id"])
        return due

    def _look_up(self, mailbox: Mailbox, record_id: str) -> None:
        self._looked_up[record_id] = time.monotonic()
        doc = self.store.get("outbox", record_id)
        if doc is None or not mailbox.search(["HEADER", "Message-ID", doc["message_id"]]):
            return
        with self.lane, self.store.transaction():
            current = self.store.get("outbox", record_id)
            if current is None or current["state"] != "unknown":
                return
            self.records.update(record_id, state="sent", sent_at=current["unknown_since"],
                                found_in_sent=True, last_error=None)
        self._looked_up.pop(record_id, None)
        log.info("outbox %s: found in Sent by Message-ID: sent, not resent", record_id)
