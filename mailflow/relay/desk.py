"""The Career Relay link and referral code, and recording a rejection on the candidate.

A link is `{public_url}/r/{token}`. The token is `secrets.token_urlsafe(24)` (192 random bits,
32 characters): unguessable, no personal data in it. It is the key of a document of kind
"tokens" holding the candidate's id, this rejection's id, when it was issued, and the
candidate's referral code; the web edge resolves it there (`GET /r/{token}`).

Issuing a link also gives the candidate's consent page link (`pool.consent_links`), for the
invitation's `consent_url`.

The referral code (`relay_ref`) is what the partner knows the candidate by: 96 random bits as
24 hex digits, no personal data, created once per candidate and reused for every later link.

`Invitations` is what a rejection rewrite needs from the store; `RelayDesk` records for real,
`PreviewDesk` only looks (read-only store, or none) and hands out a throwaway "preview" link.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Protocol

from mailflow.clock import Clock, iso
from mailflow.mail.people import normalise_email
from mailflow.pool.consent_links import consent_link, consent_token
from mailflow.pool.records import Candidate
from mailflow.pool.talent import RELAY_STATUSES, TalentPool, new_candidate
from mailflow.store.base import Store

log = logging.getLogger("mailflow.relay")

TOKEN_BYTES = 24  # 192 bits; the brief asks at least 128
REF_BYTES = 12  # 96 bits
PREVIEW = "preview"


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_referral_code() -> str:
    return secrets.token_hex(REF_BYTES)


def relay_link(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/r/{token}"


@dataclass(frozen=True)
class RejectionFacts:
    """What HR's rejection says: reason and stage (may be empty), willingness to re-scout
    (None when HR did not say), the rejection mail's Message-ID."""

    reason: str = ""
    stage: str = ""
    rescout: bool | None = None
    message_id: str | None = None
    at: str | None = None  # when the rejection was sent, if known (else: now)


@dataclass(frozen=True)
class Invite:
    """An issued invitation: the link to put in the mail and what identifies it."""

    link: str
    token: str
    rejection_id: str
    relay_ref: str
    recorded: bool
    consent_link: str = ""  # the candidate's consent page


class Invitations(Protocol):
    """What a rejection rewrite asks of the talent pool."""

    def candidate_for(self, email: str) -> Candidate | None:
        """The candidate with this email address, or None."""
        ...

    def issue(self, candidate: Candidate, facts: RejectionFacts) -> Invite:
        """A personal link for ``candidate``, recording this rejection (or not, in a preview)."""
        ...


def _further_than_invited(status: str | None) -> bool:
    return status in RELAY_STATUSES[RELAY_STATUSES.index("invited") + 1 :]


class RelayDesk:
    """Issues links for real: one transaction writes the token, the candidate and two events."""

    def __init__(self, store: Store, clock: Clock, public_url: str) -> None:
        self.store = store
        self.clock = clock
        self.public_url = public_url
        self.pool = TalentPool(store, clock)

    def candidate_for(self, email: str) -> Candidate | None:
        return self.pool.by_email(email)

    def _referral_code(self, candidate: Candidate) -> str:
        if candidate.get("relay_ref"):
            return str(candidate["relay_ref"])
        while True:
            code = new_referral_code()
            if not self.store.find("candidates", "relay_ref", code):
                return code

    def issue(self, candidate: Candidate, facts: RejectionFacts) -> Invite:
        at = iso(self.clock.now())
        token = new_token()
        rejection_id = "rj_" + secrets.token_hex(8)
        with self.store.transaction():
            current = self.pool.get(candidate["id"]) or candidate
            ref = self._referral_code(current)
            self.store.put("tokens", token, {
                "candidate_id": current["id"], "rejection_id": rejection_id, "issued_at": at,
                "relay_ref": ref, "message_id": facts.message_id,
            })
            current["relay_ref"] = ref
            current["status"] = "rejected"
            current["rejection"] = {"id": rejection_id, "reason": facts.reason,
                                    "at": facts.at or at,
                                    "stage": facts.stage, "rescout": facts.rescout,
                                    "message_id": facts.message_id}
            if facts.rescout is not None:
                current["rescout_ok"] = facts.rescout
            if not _further_than_invited(current.get("relay_status")):
                current["relay_status"] = "invited"
            self.pool.save(current)
            self.pool.event(current["id"], "rejected", rejection_id=rejection_id,
                            reason=facts.reason, stage=facts.stage, rescout=facts.rescout,
                            message_id=facts.message_id)
            self.pool.event(current["id"], "invited", rejection_id=rejection_id)
            consent = consent_link(self.public_url,
                                   consent_token(self.store, self.clock, current["id"]))
        candidate.update(current)
        log.info("candidate %s: rejection %s recorded, invitation issued", current["id"],
                 rejection_id)
        return Invite(relay_link(self.public_url, token), token, rejection_id, ref, True, consent)


class PreviewDesk:
    """Looks candidates up (in a read-only store, or nowhere) and records nothing.

    ``stand_in`` is an address to answer for even when the pool does not know it (`rewrite
    --to-candidate` on a fresh install): a blank candidate with that address.
    """

    def __init__(self, store: Store | None, clock: Clock, public_url: str,
                 stand_in: str | None = None) -> None:
        self.pool = TalentPool(store, clock) if store is not None else None
        self.clock = clock
        self.public_url = public_url
        self.stand_in = normalise_email(stand_in) if stand_in else None

    def candidate_for(self, email: str) -> Candidate | None:
        found = self.pool.by_email(email) if self.pool is not None else None
        if found is None and self.stand_in is not None and normalise_email(email) == self.stand_in:
            found = new_candidate(PREVIEW, iso(self.clock.now()))
            found["emails"] = [self.stand_in]
        return found

    def issue(self, candidate: Candidate, facts: RejectionFacts) -> Invite:
        ref = str(candidate.get("relay_ref") or PREVIEW)
        return Invite(relay_link(self.public_url, PREVIEW), PREVIEW, PREVIEW, ref, False,
                      consent_link(self.public_url, PREVIEW))
