"""`send` mode: rejections HR files in the outbox folder are rewritten, sent and filed in Sent.

For each message in the outbox folder: rewrite it (a rejection gets its invitation; anything
else is sent untouched or left with a \\Flagged mark, as `[rejection] not_rejection` says), then
in one store transaction queue it in the durable outbox (Message-ID kept; a Message-ID already
queued is not queued twice) and journal the step; then remove only its UID from the folder. The
outbox sends it once and files the copy in Sent. A crash anywhere converges: a message still in
the folder whose Message-ID is queued is only removed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from email.utils import getaddresses

from mailflow import faults
from mailflow.clock import Clock, iso
from mailflow.mail.parse import parse_mail
from mailflow.mailbox.imap import Mailbox
from mailflow.mailbox.pipeline import message_key, raw_message_id
from mailflow.outgoing.outbox import Outbox
from mailflow.rejection.rewriting import RejectionRewrite
from mailflow.store.base import Store

log = logging.getLogger("mailflow.sending")

MARK = b"\\Flagged"


def envelope_recipients(raw: bytes) -> list[str]:
    """To, Cc and Bcc of a mail HR wrote: where it goes."""
    mail = parse_mail(raw)
    found = [a.email for a in (*mail.to, *mail.cc)]
    found += [address for _name, address in getaddresses(mail.header_all("Bcc"))]
    unique: list[str] = []
    for address in found:
        if address and address.lower() not in (u.lower() for u in unique):
            unique.append(address)
    return unique


def without_bcc(raw: bytes) -> bytes:
    """The mail without its Bcc field (the envelope carries it), other bytes untouched."""
    head_end = raw.find(b"\r\n\r\n")
    eol = b"\r\n"
    if head_end < 0:
        head_end, eol = raw.find(b"\n\n"), b"\n"
    if head_end < 0:
        return raw
    lines = raw[:head_end].split(eol)
    kept: list[bytes] = []
    skipping = False
    for line in lines:
        if line[:1] in (b" ", b"\t") and skipping:
            continue
        skipping = line.lower().startswith(b"bcc:")
        if not skipping:
            kept.append(line)
    return eol.join(kept) + raw[head_end:]


class OutboxFolder:
    def __init__(self, store: Store, clock: Clock, outbox: Outbox,
                 rewrite: Callable[[bytes], RejectionRewrite], not_rejection: str,
                 lane: threading.RLock, trash: str | None = None) -> None:
        self.store = store
        self.clock = clock
        self.outbox = outbox
        self.rewrite = rewrite
        self.not_rejection = not_rejection
        self.lane = lane
        self.trash = trash

    def scan(self, mailbox: Mailbox, folder: str) -> float | None:
        mailbox.select(folder)
        uids = mailbox.search(["NOT", "DELETED"])
        for fetched in mailbox.fetch(uids):
            self._take(mailbox, folder, fetched.uid, fetched.raw)
        return None

    def _take(self, mailbox: Mailbox, folder: str, uid: int, raw: bytes) -> None:
        key = message_key(raw)
        message_id = raw_message_id(raw)
        with self.lane:
            queued = bool(message_id and self.store.find("outbox", "message_id", message_id))
            journal = self.store.get("journal", key)
        if journal is not None and journal["state"] == "left":
            return  # judged before and left for HR (marked); judged again only if changed
        if not queued and journal is None:
            # the rewrite (which records the rejection and issues the link), the queueing and
            # the journal are one transaction: a crash leaves all of them or none
            with self.lane, self.store.transaction():
                result = self.rewrite(raw)
                if result.outcome == "refused":
                    log.error("outbox folder UID %d refused (alert): %s", uid,
                              "; ".join(result.problems))
                recipients = envelope_recipients(result.raw)
                left = self.not_rejection == "mark" or result.decision.uncertain  # HR decides
                if (not result.rewritten and left) or not recipients:
                    self.store.put("journal", key, {
                        "key": key, "kind": "outbox-folder", "state": "left", "folder": folder,
                        "uid": uid, "why": result.why if recipients else "no recipient",
                        "at": iso(self.clock.now())})
                    record = None
                else:
                    record = self.outbox.queue(
                        without_bcc(result.raw), to=recipients,
                        purpose="rejection" if result.rewritten else "as-is",
                        candidate_id=result.candidate_id)
                    self.store.put("journal", key, {
                        "key": key, "kind": "outbox-folder", "state": "queued",
                        "folder": folder, "uid": uid, "outbox_id": record["id"],
                        "at": iso(self.clock.now())})
            if record is None:
                mailbox.add_flags([uid], [MARK])  # HR sees it; mailflow remembers it in the store
                log.info("outbox folder UID %d left with a mark: %s", uid,
                         result.why if recipients else "no recipient")
                return
            log.info("outbox folder UID %d queued as %s (%s)", uid, record["id"], result.why)
        faults.point("sendmode:queued")
        mailbox.select(folder)
        mailbox.remove([uid], self.trash)
        with self.lane:
            doc = self.store.get("journal", key)
            if doc is not None:
                self.store.put("journal", key, {**doc, "state": "done"})
