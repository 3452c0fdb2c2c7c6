"""The outbox: every mail mailflow sends goes out once, or waits where an admin can see it.

A mail gets its Message-ID once, spliced into its header block, and a record written durably
before any SMTP connection opens (DESIGN invariant 3). `deliver_due` claims due records
(`queued` → `sending`), and just before DATA it records durably that DATA has started: a daemon
that dies before that point requeues the record at start-up, one that dies after it cannot know
whether the server took the mail, so the record becomes `unknown` and is never resent
automatically (`resend` / `mark_sent` are the admin's). Where the provider files sent mail itself
(`[mailbox] provider_files_sent`), an unknown record is looked up in Sent by Message-ID first;
otherwise a copy of each sent mail is appended to Sent, once (Sent is searched before appending).

States: queued → sending → sent | queued (temporary failure, backoff; or server-level refusal,
with an admin alert) | failed (every recipient or the message refused for good) | unknown.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from email.utils import make_msgid, parseaddr
from typing import Any

import aiosmtplib
from imapclient.exceptions import IMAPClientError

from mailflow import faults
from mailflow.clock import Clock, iso, parse_iso
from mailflow.errors import MailflowError, MissingSecret, UsageError
from mailflow.mailbox.imap import Mailbox, MailboxError
from mailflow.mailbox.pipeline import raw_message_id
from mailflow.settings.config import Config
from mailflow.store.base import Doc, Store

log = logging.getLogger("mailflow.outbox")

STATES = ("queued", "sending", "sent", "failed", "unknown")
FILING = "sent-filing"  # journal kind: a copy of a sent mail still to be appended to Sent
Undeliverable = Callable[[str, Doc], None]
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_ADDRESS = re.compile(r"<?[^\s<>@]+@[^\s<>]+>?")


def redacted(reply: str) -> str:
    """A server reply for the log: servers often echo the address, logs carry none."""
    return _ADDRESS.sub("<address>", reply)


class OutboxRefused(MailflowError):
    """An admin action the record does not allow (unknown id, wrong state): exit code 1."""


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


def public(doc: Doc) -> Doc:
    """A record without its raw bytes (for listings and answers)."""
    return {key: value for key, value in doc.items() if key != "raw"}


class Outbox:
    """Queue, deliver, file in Sent; admin actions. Store writes go through `lane`."""

    def __init__(self, store: Store, clock: Clock, config: Config, lane: threading.RLock,
                 on_undeliverable: Undeliverable | None = None) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.lane = lane
        self.on_undeliverable = on_undeliverable
        self.on_wake: Callable[[], object] | None = None
        self.retry_first_seconds = 30.0
        self.retry_max_seconds = 3600.0
        self.lookup_seconds = 30.0  # provider_files_sent: how often an unknown one is looked up
        self.lookup_window_seconds = 86400.0  # … and for how long after the attempt
        self.imap_retry_seconds = 30.0
        self.alert: str | None = None  # a server-level refusal the admin must see
        self._running = threading.Lock()
        self._stopping = False
        self._recovered = False
        self._imap_retry_at = 0.0
        self._looked_up: dict[str, float] = {}

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
              build: Callable[[str], bytes] | None = None) -> Doc:
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
                return known[0]
            record_id = secrets.token_hex(5)
            doc: Doc = {
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

    def queue_command(self, args: dict[str, Any]) -> Doc:
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

    def resend(self, record_id: str) -> Doc:
        """An unknown or failed mail goes out again, with the same Message-ID (attempts reset,
        addresses refused before are tried again)."""
        doc = self._admin(record_id, ("unknown", "failed"), "resent", state="queued",
                          attempts=0, next_at=iso(self.clock.now()), last_error=None,
                          phase=None, unknown_since=None, undeliverable=[])
        self.wake()
        return doc

    def mark_sent(self, record_id: str) -> Doc:
        """The admin knows this mail went out: it is never sent (again) by mailflow."""
        return self._admin(record_id, ("unknown", "failed", "queued"), "marked sent",
                           state="sent", sent_at=iso(self.clock.now()), phase=None,
                           marked_by="admin")

    def _admin(self, record_id: str, allowed: tuple[str, ...], what: str,
               **changes: Any) -> Doc:
        with self.lane, self.store.transaction():
            doc = self.store.get("outbox", record_id)
            if doc is None:
                raise OutboxRefused(f"no outbox mail {record_id}")
            if doc["state"] not in allowed:
                raise OutboxRefused(f"{record_id} is {doc['state']}: only "
                                    f"{' or '.join(allowed)} mail can be {what}")
            doc.update(changes, updated_at=iso(self.clock.now()))
            self.store.put("outbox", record_id, doc)
            if doc["state"] == "sent":
                self._journal_filing(doc)
        log.info("outbox %s: %s by the admin", record_id, what)
        return public(doc)

    # -- delivering -------------------------------------------------------------------------

    def deliver_due(self) -> int:
        """One delivery round (blocking; run it in a thread): send what is due, file copies in
        Sent, look unknown ones up. Returns how many mails were sent."""
        with self._running:
            if self._stopping:
                return 0
            if not self._recovered:
                self._recover()
            sent = 0
            for record_id in self._due():
                if self._stopping:
                    break
                sent += self._attempt(record_id)
            if not self._stopping:
                self._imap_work()
            return sent

    def stop(self) -> None:
        """No new round starts; returns once the round in hand has finished."""
        self._stopping = True
        with self._running:
            pass

    def _recover(self) -> None:
        """Records left `sending` by a daemon that died: before DATA → queued, else unknown."""
        for doc in self.store.find("outbox", "state", "sending"):
            if doc.get("phase") == "data_started":
                self._ended(doc["id"], OutcomeUnknown("the daemon stopped after DATA began"))
            else:
                self._update(doc["id"], state="queued", phase=None,
                             next_at=iso(self.clock.now()),
                             last_error="the daemon stopped before DATA; queued again")
        self._recovered = True

    def _due(self) -> list[str]:
        now = iso(self.clock.now())
        due = [d for d in self.store.find("outbox", "state", "queued") if d["next_at"] <= now]
        return [d["id"] for d in sorted(due, key=lambda d: d["next_at"])]

    def _update(self, record_id: str, **changes: Any) -> Doc:
        with self.lane, self.store.transaction():
            doc = self.store.get("outbox", record_id)
            if doc is None:
                raise OutboxRefused(f"no outbox mail {record_id}")
            doc.update(changes, updated_at=iso(self.clock.now()))
            self.store.put("outbox", record_id, doc)
            return doc

    def _claim(self, record_id: str) -> Doc | None:
        now = iso(self.clock.now())
        with self.lane, self.store.transaction():
            doc = self.store.get("outbox", record_id)
            if doc is None or doc["state"] != "queued" or doc["next_at"] > now:
                return None  # an admin changed it meanwhile
            doc.update(state="sending", phase="connecting", attempts=doc["attempts"] + 1,
                       updated_at=now)
            self.store.put("outbox", record_id, doc)
            return doc

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
            sent = self._update(record_id, state="sent", phase=None, last_error=None,
                                sent_at=iso(self.clock.now()))
            self._journal_filing(sent)
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
        self._update(record_id, **changes)
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

    async def _transmit(self, doc: Doc) -> None:
        s = self.config.smtp
        refused_before = {u["address"] for u in doc["undeliverable"]}
        recipients = [a for a in doc["to"] if a not in refused_before]
        if not recipients:
            raise Refused("no deliverable recipient left")
        raw = base64.b64decode(doc["raw"])
        client = aiosmtplib.SMTP(hostname=s.host, port=s.port, use_tls=s.security == "tls",
                                 start_tls=s.security == "starttls", timeout=s.timeout_seconds)
        try:
            try:
                await client.connect()
                if s.username:
                    await client.login(s.username, self.config.secret("smtp.password_env"))
                await client.mail(doc["from"], options=_mail_options(client, raw))
                accepted, refused, deferred = await _recipients(client, recipients)
            except (aiosmtplib.SMTPException, OSError, MissingSecret) as exc:
                raise _before_data(exc) from exc
            self._refused(doc["id"], refused)
            if deferred:
                raise TryLater(f"recipient deferred: {deferred[0]}")
            if not accepted:
                raise Refused("every recipient refused")
            self._update(doc["id"], phase="data_started")
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

    # -- Sent folder ------------------------------------------------------------------------

    def _journal_filing(self, doc: Doc) -> None:
        if self.config.mailbox.provider_files_sent or doc.get("filed_in_sent"):
            return
        key = f"outbox-file:{doc['id']}"
        self.store.put("journal", key, {"key": key, "kind": FILING, "state": "journaled",
                                        "outbox_id": doc["id"], "at": iso(self.clock.now())})

    def _imap_work(self) -> None:
        jobs = [j for j in self.store.find("journal", "state", "journaled")
                if j.get("kind") == FILING]
        lookups = self._lookups_due()
        if not (jobs or lookups) or time.monotonic() < self._imap_retry_at:
            return
        mailbox: Mailbox | None = None
        try:
            mailbox = Mailbox(self.config.mailbox, self.config.secret("mailbox.password_env"))
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
        if doc is not None and not mailbox.search(["HEADER", "Message-ID", doc["message_id"]]):
            when = parse_iso(doc["sent_at"]) if doc.get("sent_at") else None
            mailbox.append(folder, base64.b64decode(doc["raw"]), [b"\\Seen"], when)
            faults.point("outbox:filed")
            log.info("outbox %s: copy filed in Sent", doc["id"])
        with self.lane, self.store.transaction():
            if doc is not None:
                self._update(doc["id"], filed_in_sent=True)
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
            self._update(record_id, state="sent", sent_at=current["unknown_since"],
                         found_in_sent=True, last_error=None)
        self._looked_up.pop(record_id, None)
        log.info("outbox %s: found in Sent by Message-ID: sent, not resent", record_id)


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
