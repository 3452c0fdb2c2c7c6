"""Handing a registered candidate's profile to Career Relay (APPI 法27: provision to a third
party needs the person's consent; 法29: each provision is recorded).

Without `[career_relay] handover_url` the partner learns only the opaque referral code (the
`/r` redirect). With it, a `registered` callback also queues a hand-over — a job in the store
kind "journal" (kind `career-relay-handover`), written in the callback's own transaction, so it
is durable before the partner is answered and is picked up again after a restart.

A delivery round (`Handovers.deliver_due`, every second while the web edge runs) takes each due
job and asks, at that moment, whether `career_relay` consent holds (`pool.consent.state`). If not,
the job is blocked (state `blocked`, the reason kept, `handover_blocked` on the timeline) and
nothing leaves. If it holds, the candidate's `HANDOVER_ITEMS` — only those — are POSTed as JSON,
signed like the partner's callbacks (`X-CareerRelay-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
"<t>.<body>">`, the relay secret), and once the partner answers 2xx one transaction writes the
provision record (kind "provisions": `id`, `candidate_id`, `items`, `recipient`,
`recipient_host`, `at`, `consent` — the consent it rested on, with its evidence), marks the job
done and puts `provided` on the timeline. A failure is retried with backoff
(`FIRST_RETRY_SECONDS` doubling up to `MAX_RETRY_SECONDS`); a 4xx answer other than 408 or 429
is given up (state `failed`, logged). The body carries the hand-over's id, so a partner that
gets it twice (a crash after its answer, before our record) can tell; an attempt whose outcome
was never known is recorded as a possible provision even when consent was withdrawn since.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import threading
from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from mailflow.clock import Clock, iso
from mailflow.errors import MailflowError
from mailflow.pool import consent
from mailflow.pool.records import Candidate
from mailflow.pool.talent import TalentPool
from mailflow.relay.signing import SIGNATURE_HEADER, sign
from mailflow.settings.config import Config
from mailflow.store.base import Doc, Store

log = logging.getLogger("mailflow.handover")

HANDOVER_ITEMS = ("name", "email", "desired_role", "skills", "qualifications")
PURPOSE = "career_relay"
RECIPIENT = "Career Relay"
KIND = "career-relay-handover"
FIRST_RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 3600.0
ROUND_SECONDS = 1.0
TIMEOUT_SECONDS = 10.0


def handover_id(event_id: str) -> str:
    return "ho_" + hashlib.sha256(event_id.encode("utf-8")).hexdigest()[:20]


def queue_handover(store: Store, clock: Clock, candidate_id: str, event_id: str) -> str:
    """Queue the hand-over a `registered` event asks for (in the caller's transaction)."""
    job_id = handover_id(event_id)
    key = f"handover:{job_id}"
    if store.get("journal", key) is None:
        now = iso(clock.now())
        store.put("journal", key, {
            "key": key, "kind": KIND, "state": "journaled", "id": job_id,
            "candidate_id": candidate_id, "event_id": event_id, "queued_at": now,
            "next_attempt_at": now, "attempts": 0, "last_error": None, "sending_since": None})
    return job_id


def profile(candidate: Candidate) -> dict[str, Any]:
    """Exactly `HANDOVER_ITEMS` of the candidate (pure)."""
    emails = [e for e in candidate.get("emails") or []
              if e not in set(candidate.get("undeliverable") or [])]
    values: dict[str, Any] = {
        "name": candidate.get("name") or "", "email": emails[0] if emails else "",
        "desired_role": candidate.get("desired_role") or "",
        "skills": list(candidate.get("skills") or []),
        "qualifications": list(candidate.get("qualifications") or [])}
    return {item: values[item] for item in HANDOVER_ITEMS}


def handover_body(job_id: str, company_id: str, candidate: Candidate, at: str) -> bytes:
    """The JSON the partner receives: the hand-over's id, the company, the referral code and
    the profile (pure)."""
    return json.dumps({"id": job_id, "type": "profile", "company": company_id,
                       "ref": candidate.get("relay_ref"), "sent_at": at,
                       "profile": profile(candidate)}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


class Handovers:
    def __init__(self, store: Store, clock: Clock, config: Config,
                 lane: threading.RLock | None = None) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.url = config.career_relay.handover_url
        self.host = urlsplit(self.url).netloc
        self.lane = lane or threading.RLock()
        self.pool = TalentPool(store, clock)
        self.notified = frozenset(config.privacy.notified_purposes)

    def due(self) -> list[str]:
        stamp = iso(self.clock.now())
        return [str(job["key"]) for job in self.store.find("journal", "state", "journaled")
                if job.get("kind") == KIND and str(job.get("next_attempt_at")) <= stamp]

    def deliver_due(self) -> Counter[str]:
        """One round: every due hand-over sent, blocked or put off. Outcomes by name."""
        outcomes: Counter[str] = Counter()
        for key in self.due() if self.url else []:
            outcomes[self.deliver(key)] += 1
        return outcomes

    def deliver(self, key: str) -> str:
        """One hand-over: "delivered", "blocked", "retry", "failed" or "gone"."""
        with self.lane, self.store.transaction():
            ready = self._prepare(key)
        if isinstance(ready, str):
            return ready
        job, body = ready
        import httpx  # here, not at the top: the daemon starts without it (~35 ms)

        try:
            secret = self.config.secret("career_relay.secret_env").encode("utf-8")
            signature = sign(secret, body, int(self.clock.now().timestamp()))
            answer = httpx.post(self.url, content=body, timeout=TIMEOUT_SECONDS, headers={
                SIGNATURE_HEADER: signature, "Content-Type": "application/json"})
        except (httpx.HTTPError, MailflowError) as exc:
            return self._settle(job, None, f"{type(exc).__name__}: {exc}")
        return self._settle(job, answer.status_code, f"HTTP {answer.status_code}")

    def _prepare(self, key: str) -> str | tuple[Doc, bytes]:
        """In a transaction: the job and the body to send, or why nothing is sent."""
        job = self.store.get("journal", key)
        if job is None or job.get("state") != "journaled":
            return "gone"
        candidate = self.pool.get(str(job["candidate_id"]))
        if candidate is None:
            self._finish(job, "dropped", "the candidate was erased")
            return "gone"
        held = consent.state(candidate, PURPOSE, self.notified)
        if not held.holds:
            if job.get("sending_since"):  # an earlier attempt may have reached the partner
                self._provided(job, candidate, delivered="unknown")
            why = f"no consent for {PURPOSE!r} ({held.why})"
            self._finish(job, "blocked", why)
            self.pool.event(candidate["id"], "handover_blocked", handover_id=job["id"],
                            reason=why)
            log.info("hand-over %s for candidate %s blocked: %s", job["id"], candidate["id"],
                     why)
            return "blocked"
        stamp = iso(self.clock.now())
        job.update(sending_since=stamp, attempts=int(job.get("attempts", 0)) + 1,
                   consent={"purpose": PURPOSE, "basis": held.why,
                            **(consent.explicit(candidate, PURPOSE) or {})})
        self.store.put("journal", key, job)
        company = self.config.career_relay.company_id
        return job, handover_body(str(job["id"]), company, candidate, stamp)

    def _settle(self, job: Doc, status: int | None, what: str) -> str:
        with self.lane, self.store.transaction():
            current = self.store.get("journal", str(job["key"]))
            if current is None or current.get("state") != "journaled":
                return "gone"
            if status is not None and 200 <= status < 300:
                candidate = self.pool.get(str(job["candidate_id"]))
                if candidate is not None:
                    self._provided(job, candidate, delivered=True)
                self._finish(current, "done", what)
                log.info("hand-over %s: delivered to %s (%s)", job["id"], self.host, what)
                return "delivered"
            current["sending_since"] = None
            current["last_error"] = what
            if status is not None and 400 <= status < 500 and status not in (408, 429):
                self._finish(current, "failed", f"refused by the partner: {what}")
                log.error("hand-over %s: refused by %s (%s); not retried", job["id"],
                          self.host, what)
                return "failed"
            again = next_attempt(self.clock.now(), int(job["attempts"]))
            current["next_attempt_at"] = iso(again)
            self.store.put("journal", str(current["key"]), current)
            log.warning("hand-over %s: not delivered (%s); again at %s", job["id"], what,
                        current["next_attempt_at"])
            return "retry"

    def _provided(self, job: Doc, candidate: Candidate, delivered: bool | str) -> None:
        """The record of provision (APPI 法29) and `provided` on the timeline."""
        stamp = iso(self.clock.now())
        record = {"id": job["id"], "candidate_id": candidate["id"],
                  "items": list(HANDOVER_ITEMS), "recipient": RECIPIENT,
                  "recipient_host": self.host, "at": stamp, "consent": job.get("consent"),
                  "ref": candidate.get("relay_ref"), "event_id": job.get("event_id"),
                  "delivered": delivered}
        self.store.put("provisions", str(job["id"]), record)
        self.pool.event(candidate["id"], "provided", provision_id=job["id"],
                        recipient=RECIPIENT, items=list(HANDOVER_ITEMS), delivered=delivered)

    def _finish(self, job: Doc, state: str, why: str) -> None:
        job.update(state=state, reason=why, sending_since=None, done_at=iso(self.clock.now()))
        self.store.put("journal", str(job["key"]), job)

    async def run(self, stopping: asyncio.Event) -> None:
        """Delivery rounds every `ROUND_SECONDS` until `stopping` is set (the round in hand is
        finished first: the store stays open until then)."""
        while not stopping.is_set():
            try:
                await asyncio.to_thread(self.deliver_due)
            except Exception:
                log.exception("hand-over: delivery round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), ROUND_SECONDS)


def next_attempt(after: datetime, attempts: int) -> datetime:
    """When a hand-over that failed `attempts` times is tried again (pure)."""
    wait = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** max(0, attempts - 1))
    return after + timedelta(seconds=wait)
