"""Career Relay's signed callbacks: verified, parsed, recorded once.

Pure part: `sign`, `parse_signature`, `check_signature` and `parse_event` (raise `Refused` with
the HTTP status INTERFACE.md gives). Edge part: `CareerRelayCallbacks.record_batch` records
verified events in one store transaction (group commit: the web edge answers each request only
after that transaction committed).

Recording an event, in the transaction:
- an event id already recorded (kind `callbacks`) changes nothing: 200, `duplicate: true`;
- a ref no candidate carries is quarantined (kind `quarantine`, role `callback`, with the raw
  body and signature) and answered 422; a later delivery of the same event that finds the ref
  resolves that quarantine item;
- otherwise the candidate's `relay_status` moves (unless a partner event that occurred later was
  applied already), the event is put on the candidate's timeline, `registered` credits the
  ledger and `withdrawn` corrects it (see `mailflow.relay.ledger`);
- `registered` also records the candidate's consent to `career_relay` (evidence: the event id)
  unless they withdrew it after the registration occurred, and, with `[career_relay]
  handover_url`, queues the hand-over of their profile (`mailflow.relay.handover`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mailflow.clock import Clock, iso, parse_iso
from mailflow.errors import MailflowError, StoreFull
from mailflow.pool import consent
from mailflow.pool.records import Candidate, as_candidate
from mailflow.pool.talent import TalentPool
from mailflow.relay.accounting import LedgerError
from mailflow.relay.handover import PURPOSE, queue_handover
from mailflow.relay.ledger import ReferralLedger
from mailflow.relay.signing import SIGNATURE_HEADER, sign
from mailflow.settings.config import Config
from mailflow.store.base import Store

log = logging.getLogger("mailflow.callbacks")

TOLERANCE_SECONDS = 300
MAX_FIELD = 200  # characters of `id` and `ref`
# event type -> the candidate's relay_status
STATUSES = {"registered": "registered", "introduced": "introduced", "hired": "hired_elsewhere",
            "withdrawn": "withdrawn"}


class Refused(Exception):
    """A callback refused before anything is recorded."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{status}: {reason}")


@dataclass(frozen=True)
class PartnerEvent:
    id: str
    type: str
    ref: str
    occurred_at: str  # normalised to UTC, as the store keeps times
    body_sha256: str
    raw: bytes = b""
    signature: str = ""


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


# -- pure -----------------------------------------------------------------------------------------


def parse_signature(header: str | None) -> tuple[int, list[str]]:
    """`t=<unix>,v1=<hex>[,v1=<hex>…]` → (t, signatures); Refused(401) when missing or garbled."""
    if not header:
        raise Refused(401, f"{SIGNATURE_HEADER} header missing")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise Refused(401, f"{SIGNATURE_HEADER} header garbled")
        if name == "t" and value.isdigit() and len(value) <= 12 and timestamp is None:
            timestamp = int(value)
        elif name == "v1" and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
            signatures.append(value)
        elif name in ("t", "v1"):
            raise Refused(401, f"{SIGNATURE_HEADER} header garbled")
    if timestamp is None or not signatures:
        raise Refused(401, f"{SIGNATURE_HEADER} header garbled")
    return timestamp, signatures


def check_signature(secret: bytes, header: str | None, body: bytes, now: datetime) -> None:
    """HMAC-SHA256 of "<t>.<raw body>", compared in constant time; t within 300 s of now."""
    timestamp, signatures = parse_signature(header)
    expected = sign(secret, body, timestamp).rpartition("=")[2]
    matched = False
    for candidate in signatures:  # every one compared: no early exit on a match
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise Refused(401, "signature does not match")
    if abs(now.timestamp() - timestamp) > TOLERANCE_SECONDS:
        raise Refused(401, f"timestamp more than {TOLERANCE_SECONDS} s away")


def parse_event(body: bytes, signature: str = "") -> PartnerEvent:
    """The event in a verified body; Refused(400) naming what is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "body is not JSON") from None
    except RecursionError:  # 30,000 nested arrays: not an event, and not our 500
        raise Refused(400, "body is nested too deep") from None
    if not isinstance(data, dict):
        raise Refused(400, "body is not a JSON object")
    problems = []
    for name in ("id", "ref"):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_FIELD:
            problems.append(f"{name}: expected a non-empty string of at most {MAX_FIELD} "
                            "characters")
        elif not _is_unicode(value):
            problems.append(f"{name}: not valid Unicode (a lone surrogate such as \\ud800)")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in STATUSES:  # a list here is not hashable
        problems.append(f"type: expected one of {', '.join(STATUSES)}")
    occurred = data.get("occurred_at")
    try:
        at = datetime.fromisoformat(occurred) if isinstance(occurred, str) else None
        if at is not None and at.tzinfo is not None:
            at.astimezone(UTC)  # 0001-01-01T00:00+09:00 has no UTC time: OverflowError
    except (ValueError, OverflowError):
        at = None
    if at is None or at.tzinfo is None:
        problems.append("occurred_at: expected an ISO 8601 time with its offset "
                        "(2025-04-01T09:00:00+09:00 or …Z)")
    if problems:
        raise Refused(400, "; ".join(problems))
    assert at is not None
    return PartnerEvent(str(data["id"]), str(data["type"]), str(data["ref"]),
                        iso(at.astimezone(UTC)), hashlib.sha256(body).hexdigest(), body,
                        signature)


def _is_unicode(text: str) -> bool:
    """False for a JSON string with a lone surrogate ("\\ud800"): no store can hold it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def quarantine_key(event_id: str) -> str:
    return "callback:" + hashlib.sha256(event_id.encode("utf-8")).hexdigest()


# -- recording ------------------------------------------------------------------------------------


class CallbacksUnavailable(MailflowError):
    """Callbacks cannot be taken now (a secret is missing, the ledger is broken): 503."""


class CareerRelayCallbacks:
    def __init__(self, store: Store, clock: Clock, config: Config, ledger: ReferralLedger,
                 lane: threading.RLock | None = None) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.ledger = ledger
        self.lane = lane or threading.RLock()
        self.pool = TalentPool(store, clock)
        self.alert = ""  # set while callbacks cannot be recorded (shown by /healthz)

    def secret(self) -> bytes:
        try:
            return self.config.secret("career_relay.secret_env").encode("utf-8")
        except MailflowError as exc:
            raise CallbacksUnavailable(str(exc)) from exc

    def check(self, header: str | None, body: bytes) -> PartnerEvent:
        """Signature first (401), then the body (400); raises Refused."""
        try:
            secret = self.secret()
        except CallbacksUnavailable as exc:
            self._alarm(f"callbacks: {exc}")
            raise Refused(503, "callbacks are not configured") from exc
        check_signature(secret, header, body, self.clock.now())
        return parse_event(body, header or "")

    def record_batch(self, events: list[PartnerEvent]) -> list[Answer]:
        """Record verified events in one transaction; each answer holds once it commits."""
        answers = []
        try:
            with self.lane, self.store.transaction():
                for event in events:
                    answers.append(self._record_one(event))
        except StoreFull:  # said once by the store; the partner sends them again
            return [Answer(503, {"ok": False, "error": "disk full: not recorded, send it again"})
                    for _event in events]
        if any(a.status == 200 for a in answers) and self.alert:
            log.info("callbacks recorded again")
            self.alert = ""
        return answers

    def _record_one(self, event: PartnerEvent) -> Answer:
        """One event in a savepoint: its failure undoes only it (a full disk, all of them)."""
        try:
            with self.store.transaction():
                return self.record(event)
        except StoreFull:
            raise
        except LedgerError as exc:
            self._alarm(f"ledger: {exc}")
            return Answer(503, {"ok": False, "error": "ledger unavailable"})
        except MailflowError as exc:  # the ledger key missing
            self._alarm(f"callbacks: {exc}")
            return Answer(503, {"ok": False, "error": "ledger unavailable"})
        except Exception:
            log.exception("callback %s: not recorded", event.id)
            return Answer(500, {"ok": False, "error": "not recorded"})

    def record(self, event: PartnerEvent) -> Answer:
        seen = self.store.get("callbacks", event.id)
        if seen is not None:
            if seen.get("body_sha256") != event.body_sha256:
                log.warning("callback %s: repeated with a different body; the first stands",
                            event.id)
            return Answer(200, {"ok": True, "id": event.id, "duplicate": True})
        found = self.store.find("candidates", "relay_ref", event.ref)
        if not found:
            self._quarantine(event)
            return Answer(422, {"ok": False, "id": event.id, "error": "unknown ref"})
        candidate = as_candidate(found[0])
        moved = self._move(candidate, event)
        seqs: list[int] = []
        if event.type == self.config.career_relay.credit_on:  # the agreement's event
            seqs = self.ledger.credit_registration(candidate["id"], event.ref, event.id,
                                                   event.occurred_at)
        saved = False  # the candidate is written once: status and consent together
        if event.type == "registered":
            saved = self._registered(candidate, event)
        if moved and not saved:
            self.pool.save(candidate)
        if event.type == "withdrawn":
            seqs = self.ledger.correct_withdrawal(candidate["id"], event.ref, event.id,
                                                  event.occurred_at)
        self.pool.event(candidate["id"], "relay_" + event.type, event_id=event.id,
                        occurred_at=event.occurred_at, status_moved=moved, ledger=seqs)
        self.store.put("callbacks", event.id, {
            "id": event.id, "type": event.type, "ref": event.ref,
            "occurred_at": event.occurred_at, "candidate_id": candidate["id"],
            "received_at": iso(self.clock.now()), "body_sha256": event.body_sha256,
            "ledger": seqs})
        self._resolve_quarantine(event)
        log.info("callback %s: %s for candidate %s%s", event.id, event.type, candidate["id"],
                 f", ledger entries {seqs}" if seqs else "")
        return Answer(200, {"ok": True, "id": event.id, "duplicate": False})

    def _registered(self, candidate: Candidate, event: PartnerEvent) -> bool:
        """Registering at Career Relay is the candidate's consent to `career_relay` (the event
        id is the evidence), unless they said otherwise after it occurred; with a
        `handover_url`, their profile is queued for the partner (sent only while the consent
        still holds: `relay.handover`). True when the candidate was saved (with its consent)."""
        said = consent.explicit(candidate, PURPOSE)
        granted = said is None or (said["state"] != "granted"
                                   and parse_iso(said["at"]) < parse_iso(event.occurred_at))
        if granted:
            self.pool.consent_change(candidate, PURPOSE, True, consent.REGISTRATION,
                                     f"callback {event.id}", at=event.occurred_at)
        if self.config.career_relay.handover_url:
            queue_handover(self.store, self.clock, candidate["id"], event.id)
        return granted

    def _move(self, candidate: Candidate, event: PartnerEvent) -> bool:
        """Set the candidate's relay_status (the caller saves it), unless a later partner
        event was applied."""
        last = candidate.get("relay_event_at")
        if last and parse_iso(str(last)) > parse_iso(event.occurred_at):
            return False
        candidate["relay_status"] = STATUSES[event.type]
        candidate["relay_event_at"] = event.occurred_at
        return True

    def _quarantine(self, event: PartnerEvent) -> None:
        key = quarantine_key(event.id)
        old = self.store.get("quarantine", key) or {}
        now = iso(self.clock.now())
        self.store.put("quarantine", key, {
            "id": key.partition(":")[2][:12], "key": key, "state": "quarantined",
            "role": "callback", "event_id": event.id, "type": event.type, "ref": event.ref,
            "occurred_at": event.occurred_at, "attempts": int(old.get("attempts", 0)) + 1,
            "reason": "unknown ref: no candidate carries it",
            "received_at": old.get("received_at", now), "updated_at": now,
            "signature": event.signature,
            "raw": base64.b64encode(event.raw).decode("ascii")})
        log.warning("callback %s: unknown ref, quarantined", event.id)

    def _resolve_quarantine(self, event: PartnerEvent) -> None:
        key = quarantine_key(event.id)
        doc = self.store.get("quarantine", key)
        if doc is not None and doc.get("state") == "quarantined":
            self.store.put("quarantine", key, {**doc, "state": "replayed",
                                               "resolved_by": "partner retry",
                                               "updated_at": iso(self.clock.now())})

    def _alarm(self, message: str) -> None:
        if message != self.alert:
            log.error("%s; callbacks answered 503 until it is fixed", message)
        self.alert = message
