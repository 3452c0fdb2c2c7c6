"""Delivery rounds: the outbox's due records over SMTP, each attempt ending in a named outcome.

`Delivery.deliver_due` claims due records (`queued` → `sending`), and just before DATA it records
durably that DATA has started: a daemon that dies before that point requeues the record at
start-up, one that dies after it cannot know whether the server took the mail, so the record
becomes `unknown` and is never resent automatically (`resend` / `mark_sent` are the admin's).
How an attempt ended decides the state: a temporary failure is queued again with backoff
(`retry_first_seconds`, doubling up to `retry_max_seconds`), a server-level refusal stays queued
and alerts the admin, a refusal for good fails the mail. Recipients refused for good are recorded
on the mail and told to `on_undeliverable`; the others still get it. A sent mail is handed to the
Sent folder (`SentFolder`) in the same transaction that marks it sent.

Several daemons on one PostgreSQL database share the outbox: a round first claims the queued
records (`Store.claim`, up to `CLAIM_BATCH`) and sends only those claimed for it, and every round
recovers the `sending` records whose daemon died (claimed by a holder whose lease is free, or by
this daemon before its restart) as above — an outcome unknown stays unknown, never resent.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import ssl
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiosmtplib

from mailflow import faults
from mailflow.clock import iso
from mailflow.errors import MissingSecret
from mailflow.mailbox.oauth import TokenSource
from mailflow.mailbox.tls import client_context
from mailflow.outgoing.records import (
    OutboxItem,
    OutboxRecords,
    PublicOutboxItem,
    as_outbox_item,
    public,
)
from mailflow.outgoing.sent_folder import SentFolder
from mailflow.outgoing.smtp_login import smtp_login
from mailflow.settings.config import Config

log = logging.getLogger("mailflow.outbox")
CLAIM_BATCH = 1000  # queued records claimed per round (the due ones among them are sent)

Undeliverable = Callable[[str, PublicOutboxItem], None]  # the address, the mail
_ADDRESS = re.compile(r"<?[^\s<>@]+@[^\s<>]+>?")


def redacted(reply: str) -> str:
    """A server reply for the log: servers often echo the address, logs carry none."""
    return _ADDRESS.sub("<address>", reply)


# -- how an attempt ended (named outcomes inside the delivery) ----------------------------------


class AttemptEnded(Exception):
    state = "queued"
    alert = False


class TryLater(AttemptEnded):
    """4xx, connection refused, timeout or cut before DATA: retry with backoff."""


class ServerRefused(AttemptEnded):
    """Authentication or 5xx at MAIL FROM / greeting: stays queued, the admin is alerted."""

    alert = True


class Refused(AttemptEnded):
    """Every recipient, or the message itself, refused for good."""

    state = "failed"


class OutcomeUnknown(AttemptEnded):
    """Cut after DATA began: the server may have taken it; never resent automatically."""

    state = "unknown"


def _before_data(exc: BaseException) -> AttemptEnded:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        ended = TryLater if 400 <= exc.code < 500 else ServerRefused
        return ended(f"{exc.code} {exc.message}")
    if isinstance(exc, ssl.SSLError | MissingSecret):
        return ServerRefused(str(exc))
    if isinstance(exc, OSError):  # refused, reset, timeouts, SMTPServerDisconnected
        return TryLater(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, aiosmtplib.SMTPException):  # e.g. AUTH or STARTTLS not offered
        return ServerRefused(str(exc))
    return TryLater(f"{type(exc).__name__}: {exc}")


# -- the rounds -----------------------------------------------------------------------------


class Delivery:
    """Send what is due, one round at a time. Writes go through `records`."""

    def __init__(self, records: OutboxRecords, config: Config, sent_folder: SentFolder,
                 on_undeliverable: Undeliverable | None = None) -> None:
        self.records = records
        self.store = records.store
        self.clock = records.clock
        self.lane = records.lane
        self.config = config
        self.tokens = TokenSource(config.mailbox) if config.smtp.auth == "oauth2" else None
        self.sent_folder = sent_folder
        self.on_undeliverable = on_undeliverable
        self.retry_first_seconds = 30.0
        self.retry_max_seconds = 3600.0
        self.alert: str | None = None  # a server-level refusal the admin must see
        self._running = threading.Lock()
        self._stopping = False
        self._tls: tuple[Path | None, ssl.SSLContext] | None = None
        self._claimed: dict[str, str] = {}  # this round's claims: record id -> holder

    def deliver_due(self) -> int:
        """One delivery round (blocking; run it in a thread): send what is due, file copies in
        Sent, look unknown ones up. Returns how many mails were sent."""
        with self._running:
            if self._stopping:
                return 0
            self._recover()  # every round: another daemon may have died
            sent = 0
            for record_id in self._due():
                if self._stopping:
                    break
                sent += self._attempt(record_id)
            if not self._stopping:
                self.sent_folder.work()
            return sent

    def stop(self) -> None:
        """No new round starts; returns once the round in hand has finished."""
        self._stopping = True
        with self._running:
            pass

    def _recover(self) -> None:
        """Records left `sending` by a daemon that died (this one before its restart, or one
        whose lease is free): before DATA → queued, else unknown. No attempt of this daemon is
        in flight between rounds."""
        for doc in self.store.claim("outbox", "state", "sending", limit=CLAIM_BATCH,
                                    now=iso(self.clock.now())):
            if doc.get("phase") == "data_started":
                self._ended(doc["id"], OutcomeUnknown("the daemon stopped after DATA began"))
            else:
                self.records.update(doc["id"], state="queued", phase=None,
                                    next_at=iso(self.clock.now()),
                                    last_error="the daemon stopped before DATA; queued again")

    def _due(self) -> list[str]:
        now = iso(self.clock.now())
        with self.lane:
            queued = self.store.claim("outbox", "state", "queued", limit=CLAIM_BATCH, now=now)
        self._claimed = {d["id"]: d["claimed_by"] for d in queued}
        due = [d for d in queued if d["next_at"] <= now]
        return [d["id"] for d in sorted(due, key=lambda d: d["next_at"])]

    def _claim(self, record_id: str) -> OutboxItem | None:
        now = iso(self.clock.now())
        with self.lane, self.store.transaction():
            doc = self.store.get("outbox", record_id)
            if doc is None or doc["state"] != "queued" or doc["next_at"] > now:
                return None  # an admin changed it meanwhile
            if doc.get("claimed_by") != self._claimed.get(record_id):
                return None  # another daemon took it over (this one was thought dead)
            doc.update(state="sending", phase="connecting", attempts=doc["attempts"] + 1,
                       updated_at=now)
            self.store.put("outbox", record_id, doc)
            return as_outbox_item(doc)

    def _attempt(self, record_id: str) -> bool:
        doc = self._claim(record_id)
        if doc is None:
            return False
        try:
            asyncio.run(self._transmit(doc))
        except AttemptEnded as ended:
            self._ended(record_id, ended)
            return False
        except Exception as exc:  # a bug must not stop the outbox, nor resend blindly
            log.exception("outbox %s: attempt failed unexpectedly", record_id)
            current = self.store.get("outbox", record_id) or doc
            started = current.get("phase") == "data_started"
            reason = f"{type(exc).__name__}: {exc}"
            self._ended(record_id, OutcomeUnknown(reason) if started else TryLater(reason))
            return False
        faults.point("outbox:data-sent")
        with self.lane, self.store.transaction():
            sent = self.records.update(record_id, state="sent", phase=None, last_error=None,
                                       sent_at=iso(self.clock.now()))
            self.sent_folder.journal(sent)
        self.alert = None
        log.info("outbox %s: sent (attempt %d)", record_id, sent["attempts"])
        return True

    def _ended(self, record_id: str, ended: AttemptEnded) -> None:
        reason = str(ended)
        said = redacted(reason)
        doc = self.store.get("outbox", record_id)
        attempts = int(doc["attempts"]) if doc else 1
        changes: dict[str, Any] = {"state": ended.state, "phase": None, "last_error": reason}
        if ended.state == "queued":
            delay = min(self.retry_max_seconds,
                        self.retry_first_seconds * 2 ** max(0, attempts - 1))
            changes["next_at"] = iso(self.clock.now() + timedelta(seconds=delay))
        if ended.state == "unknown":
            changes["unknown_since"] = iso(self.clock.now())
        self.records.update(record_id, **changes)
        if ended.alert:
            self.alert = f"SMTP server refused: {said}"
            log.error("outbox %s: ADMIN: the SMTP server refused (%s); mail stays queued",
                      record_id, said)
        elif ended.state == "unknown":
            log.error("outbox %s: outcome unknown (%s); not resent automatically: "
                      "`mailflow outbox resend %s` or `mark-sent %s`",
                      record_id, said, record_id, record_id)
        else:
            log.warning("outbox %s: %s (%s)", record_id, ended.state, said)

    def _tls_context(self) -> ssl.SSLContext | None:
        """The verifying context, made once per CA file (reading the trust store costs more than
        a whole delivery on loopback); none for a plain connection."""
        s = self.config.smtp
        if s.security == "none":
            return None
        if self._tls is None or self._tls[0] != s.ca_file:
            self._tls = (s.ca_file, client_context(s.ca_file))
        return self._tls[1]

    async def _transmit(self, doc: OutboxItem) -> None:
        s = self.config.smtp
        refused_before = {u["address"] for u in doc["undeliverable"]}
        recipients = [a for a in doc["to"] if a not in refused_before]
        if not recipients:
            raise Refused("no deliverable recipient left")
        raw = base64.b64decode(doc["raw"])
        client = aiosmtplib.SMTP(hostname=s.host, port=s.port, use_tls=s.security == "tls",
                                 start_tls=s.security == "starttls", timeout=s.timeout_seconds,
                                 tls_context=self._tls_context())
        try:
            try:
                await client.connect()
                await smtp_login(client, self.config, self.tokens)
                await client.mail(doc["from"], options=_mail_options(client, raw))
                accepted, refused, deferred = await _recipients(client, recipients)
            except (aiosmtplib.SMTPException, OSError, MissingSecret) as exc:
                raise _before_data(exc) from exc
            self._refused(doc["id"], refused)
            if deferred:
                raise TryLater(f"recipient deferred: {deferred[0]}")
            if not accepted:
                raise Refused("every recipient refused")
            self.records.update(doc["id"], phase="data_started")
            try:
                await client.data(raw)
            except aiosmtplib.SMTPDataError as exc:  # a definite answer: not taken
                ended = TryLater if 400 <= exc.code < 500 else Refused
                raise ended(f"DATA {exc.code} {exc.message}") from exc
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise OutcomeUnknown(f"cut after DATA began: {type(exc).__name__}") from exc
        finally:
            await _close(client)

    def _refused(self, record_id: str, refused: list[tuple[str, str]]) -> None:
        """Permanently refused recipients: recorded, HR's callback told, in one transaction."""
        if not refused:
            return
        with self.lane, self.store.transaction():
            doc = self.store.get("outbox", record_id)
            assert doc is not None
            doc["undeliverable"] = [*doc["undeliverable"],
                                    *({"address": a, "reply": r} for a, r in refused)]
            self.store.put("outbox", record_id, doc)
            for address, reply in refused:
                log.warning("outbox %s: a recipient was refused for good (%s)", record_id,
                            reply.split(" ", 1)[0])
                if self.on_undeliverable is not None:
                    try:
                        self.on_undeliverable(address, public(doc))
                    except Exception:
                        log.exception("outbox %s: the undeliverable callback failed", record_id)


# -- SMTP details ---------------------------------------------------------------------------


def _mail_options(client: aiosmtplib.SMTP, raw: bytes) -> list[str]:
    options = []
    if client.supports_extension("size"):
        options.append(f"SIZE={len(raw)}")
    if not raw.isascii() and client.supports_extension("8bitmime"):
        options.append("BODY=8BITMIME")
    return options


async def _recipients(client: aiosmtplib.SMTP, recipients: list[str]
                      ) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """RCPT TO each: (accepted, refused for good with the reply, deferred replies)."""
    accepted: list[str] = []
    refused: list[tuple[str, str]] = []
    deferred: list[str] = []
    for address in recipients:
        try:
            await client.rcpt(address)
            accepted.append(address)
        except aiosmtplib.SMTPRecipientRefused as exc:
            reply = f"{exc.code} {exc.message}"
            if exc.code >= 500:
                refused.append((address, reply))
            else:
                deferred.append(reply)
    return accepted, refused, deferred


async def _close(client: aiosmtplib.SMTP) -> None:
    if not client.is_connected:
        return
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()
