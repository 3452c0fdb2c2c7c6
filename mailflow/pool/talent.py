"""The talent pool: candidate records in the store, found by email, phone or thread, merged when
they are one person, each change recorded as an event on the candidate's timeline."""

from __future__ import annotations

import copy
import logging
import secrets
from collections.abc import Callable, Iterator
from typing import Any

from mailflow.clock import Clock, iso
from mailflow.errors import MailflowError
from mailflow.mail.people import normalise_email, normalise_name
from mailflow.pool import audit, consent
from mailflow.pool.records import RELAY_STATUSES as RELAY_STATUSES  # still importable from here
from mailflow.pool.records import (
    Applicant,
    Candidate,
    ConsentEntry,
    Document,
    Hire,
    ImportRow,
    Stage,
    TimelineEvent,
    as_candidate,
    as_event,
)
from mailflow.store.base import Doc, Store

log = logging.getLogger("mailflow.pool")

HIRE_VIAS = ("slot", "agency", "direct", "referral", "reapplication")
HIRE_STAGES = ("採用", "hired", "入社")  # a `#mailflow stage=` line naming one is a hire


def new_candidate(candidate_id: str, at: str) -> Candidate:
    return {
        "id": candidate_id, "name": "", "name_normalized": "", "emails": [], "phones": [],
        "source": "", "sources": [], "status": "applied", "applications": [], "stages": [],
        "skills": [], "career": "", "qualifications": [], "desired_role": "",
        "rejection": None, "rescout_ok": None, "tags": [], "relay_status": "not_invited",
        "relay_ref": None, "reapplied": False, "consents": {}, "merges": [],
        "message_ids": [], "created_at": at, "updated_at": at,
    }


def current_hire(candidate: Candidate) -> Hire | None:
    """The candidate's hire that has not left yet, if any."""
    hires = candidate.get("hires") or []
    return hires[-1] if hires and hires[-1]["left_on"] is None else None


class TalentPool:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def now(self) -> str:
        return iso(self.clock.now())

    # -- finding ----------------------------------------------------------------------------

    def get(self, candidate_id: str) -> Candidate | None:
        doc = self.store.get("candidates", candidate_id)
        return as_candidate(doc) if doc is not None else None

    def by_email(self, email: str) -> Candidate | None:
        return self._first("emails", normalise_email(email))

    def by_phone(self, phone: str) -> Candidate | None:
        return self._first("phones", phone)

    def by_thread(self, message_ids: list[str]) -> Candidate | None:
        for message_id in message_ids:
            found = self._first("message_ids", message_id)
            if found:
                return found
        return None

    def _first(self, field: str, value: str) -> Candidate | None:
        found = self.store.find("candidates", field, value)
        return as_candidate(found[0]) if found else None

    def lookup(self, ref: str) -> Candidate | None:
        """A candidate by id or by email."""
        return self.get(ref) or (self.by_email(ref) if "@" in ref else None)

    def all(self) -> Iterator[Candidate]:
        return (as_candidate(doc) for doc in self.store.scan("candidates"))

    def timeline(self, candidate_id: str) -> list[TimelineEvent]:
        return [as_event(doc) for doc in sorted(
            self.store.find("events", "candidate_id", candidate_id),
            key=lambda e: (e["at"], e.get("seq", 0)))]

    # -- changing ---------------------------------------------------------------------------

    def record_consent(self, args: dict[str, Any]) -> dict[str, Any]:
        """An admin's record of a candidate's own word on one purpose (`candidate`, `purpose`,
        `word` grant|withdraw, `how`: the admin's reason, `actor`: who), with when; an event on
        the timeline and an entry in the audit log. The control channel's `consent.record`."""
        actor = str(args.get("actor") or "cli:unknown")
        with self.store.transaction():
            candidate = self.lookup(str(args["candidate"]))
            if candidate is None:
                raise MailflowError(f"no candidate {args['candidate']}")
            purpose, how = str(args["purpose"]), str(args["how"])
            entry = self.consent_change(candidate, purpose, args["word"] == "grant", how,
                                        f"admin command by {actor}")
            audit.record(self.store, self.clock, actor, "consent", candidate["id"],
                         {"purpose": purpose, "state": entry["state"], "reason": how})
        return {"candidate_id": candidate["id"], "purpose": purpose, **entry}

    def consent_change(self, candidate: Candidate, purpose: str, granted: bool, how: str,
                       evidence: str, at: str | None = None) -> ConsentEntry:
        """Record the candidate's word on `purpose` (when, how, evidence) and put it on the
        timeline (call it in the caller's transaction); every channel comes through here."""
        entry = consent.record(candidate, purpose, granted, at or self.now(), how, evidence)
        self.save(candidate)
        self.event(candidate["id"], "consent", purpose=purpose, **entry)
        return entry

    def save(self, candidate: Candidate) -> None:
        candidate["updated_at"] = self.now()
        self.store.put("candidates", candidate["id"], candidate)

    def event(self, candidate_id: str | None, kind: str, **data: Any) -> None:
        event: TimelineEvent = {"candidate_id": candidate_id, "type": kind, "at": self.now(),
                                "data": data}
        self.store.append("events", event)

    def match(self, applicant: Applicant) -> tuple[Candidate | None, str]:
        """The existing candidate this applicant is, and why (email or phone)."""
        found = self.by_email(applicant.email)
        if found:
            return found, f"same email {applicant.email}"
        for phone in applicant.phones:
            found = self.by_phone(phone)
            if found:
                return found, f"same phone {phone}"
        return None, ""

    def apply(self, applicant: Applicant, message_id: str | None,
              applied_at: str | None = None,
              details: Callable[[Candidate], object] | None = None) -> tuple[Candidate, bool]:
        """Record an application; returns the candidate and whether it was new. `details`:
        what else the application puts on the record (its documents, its profile), in the
        same write. Matched and saved under a lock on the applicant's email
        (`lock_until_commit`): two daemons taking the same applicant's mails to two mailboxes
        at once make one candidate."""
        with self.store.transaction():
            self.store.lock_until_commit("candidate-email:" + normalise_email(applicant.email))
            return self._apply(applicant, message_id, applied_at, details)

    def _apply(self, applicant: Applicant, message_id: str | None, applied_at: str | None,
               details: Callable[[Candidate], object] | None) -> tuple[Candidate, bool]:
        at = applied_at or self.now()
        candidate, why = self.match(applicant)
        created = candidate is None
        if candidate is None:
            candidate = new_candidate("c_" + secrets.token_hex(8), self.now())
            candidate["source"] = applicant.source
        elif why:
            candidate["merges"].append({"at": self.now(), "reason": why})
        _merge_details(candidate, applicant)
        candidate["applications"].append({
            "position": applicant.position, "applied_at": at, "source": applicant.source,
            "message_ids": [message_id] if message_id else [],
        })
        if message_id and message_id not in candidate["message_ids"]:
            candidate["message_ids"].append(message_id)
        reapplied = candidate["status"] == "rejected"
        if reapplied:
            # a rejected candidate comes back: the headline figure (A社: 8% → 22%)
            candidate["reapplied"] = True
            candidate["status"] = "applied"
            if "reapplied" not in candidate["tags"]:
                candidate["tags"].append("reapplied")
        if details is not None:
            details(candidate)
        self.save(candidate)
        if created:
            self.event(candidate["id"], "candidate_created", source=applicant.source)
        else:
            self.event(candidate["id"], "merged", reason=why)
        self.event(candidate["id"], "reapplied" if reapplied else "applied",
                   source=applicant.source, position=applicant.position, message_id=message_id)
        if reapplied:
            log.warning("candidate %s re-applied after a rejection: tell HR", candidate["id"])
        return candidate, created

    def add_documents(self, candidate: Candidate, documents: list[Document]) -> None:
        put_documents(candidate, documents)
        self.save(candidate)

    def record_stage(self, candidate: Candidate, stage: str, at: str, source: str,
                     interviewer: str = "", rating: str = "", note: str = "") -> None:
        """A step in the selection: interview invitation, offer, a `#mailflow stage=` line."""
        entry: Stage = {"stage": stage, "interviewer": interviewer, "rating": rating, "at": at,
                        "note": note, "source": source}
        if entry in candidate["stages"]:
            return
        candidate["stages"].append(entry)
        if candidate["status"] in ("applied", "screening", "interviewing"):
            candidate["status"] = "offered" if "内定" in stage or "offer" in stage.lower() \
                else "interviewing"
        self.save(candidate)
        self.event(candidate["id"], "stage", stage=stage, interviewer=interviewer,
                   rating=rating, source=source)
        if stage.strip().lower() in HIRE_STAGES and current_hire(candidate) is None:
            position = candidate["applications"][-1]["position"] if candidate["applications"] \
                else ""
            self.record_hire(candidate, at, position, "", None, source)

    def record_hire(self, candidate: Candidate, on: str, position: str, via: str,
                    slot_seq: int | None, source: str) -> Hire:
        """A hire here (call it in the caller's transaction); `via` "" means "reapplication"
        for a candidate who re-applied, else "direct"."""
        via = via or ("reapplication" if candidate["reapplied"] else "direct")
        hire: Hire = {"on": on, "position": position, "via": via, "slot_seq": slot_seq,
                      "left_on": None, "source": source}
        candidate.setdefault("hires", []).append(hire)
        candidate["status"] = "hired"
        self.save(candidate)
        self.event(candidate["id"], "hired", on=on, position=position, via=via,
                   slot_seq=slot_seq, source=source)
        return hire

    def record_left(self, candidate: Candidate, on: str) -> Hire:
        """The person hired left on `on` (a date no earlier than the hire's)."""
        hire = current_hire(candidate)
        if hire is None:
            raise MailflowError(f"candidate {candidate['id']} has no hire to leave")
        if on < hire["on"][:10]:
            raise MailflowError(f"left on {on}, before the hire on {hire['on'][:10]}")
        hire["left_on"] = on
        self.save(candidate)
        self.event(candidate["id"], "left", on=on, hired_on=hire["on"])
        return hire

    def mark_undeliverable(self, email: str, reply: str) -> Candidate | None:
        """A permanent failure at RCPT: the address no longer reaches the candidate."""
        candidate = self.by_email(email)
        if candidate is None:
            return None
        gone = candidate.setdefault("undeliverable", [])
        if normalise_email(email) not in gone:
            gone.append(normalise_email(email))
        if "undeliverable" not in candidate["tags"] and set(gone) >= set(candidate["emails"]):
            candidate["tags"].append("undeliverable")
        self.save(candidate)
        self.event(candidate["id"], "undeliverable", reply=reply[:200])
        log.warning("candidate %s: an address was refused permanently; HR should check it",
                    candidate["id"])
        return candidate

    def record_rejection(self, candidate: Candidate, reason: str, stage: str,
                         rescout: bool | None, message_id: str | None,
                         at: str | None = None) -> None:
        """A rejection without an invitation (HR sent it directly; no follow-up configured);
        `at` is when it was sent (else now)."""
        at = at or self.now()
        candidate["status"] = "rejected"
        candidate["rejection"] = {"id": None, "reason": reason, "at": at, "stage": stage,
                                  "rescout": rescout, "message_id": message_id}
        if rescout is not None:
            candidate["rescout_ok"] = rescout
        self.save(candidate)
        self.event(candidate["id"], "rejected", reason=reason, stage=stage, rescout=rescout,
                   message_id=message_id, invited=False)

    def reply(self, candidate: Candidate, message_id: str | None) -> None:
        if message_id and message_id not in candidate["message_ids"]:
            candidate["message_ids"].append(message_id)
        self.save(candidate)
        self.event(candidate["id"], "replied", message_id=message_id)

    def import_row(self, row: ImportRow, origin: str,
                   profile: Callable[[Candidate], object] | None = None
                   ) -> tuple[Candidate, str]:
        """A row of a list kept before mailflow: a new candidate, or the gaps of the one it
        matches filled (values already there are kept). "created", "merged" (the record
        changed) or "unchanged". `profile`: what the row's profile columns do to the record."""
        candidate, why = self.match(row.applicant)
        if candidate is None:
            candidate = new_candidate("c_" + secrets.token_hex(8), self.now())
            candidate["status"] = row.status or "applied"
        before = copy.deepcopy(candidate)
        if profile is not None:
            profile(candidate)
        row.fill(candidate)
        rejected = row.status == "rejected" and candidate["rejection"] is None
        if rejected:
            candidate["status"] = "rejected"
            candidate["rejection"] = {"reason": row.rejection_reason, "at": row.rejected_at,
                                      "stage": None, "source": "import"}
        said = [(p, True) for p in row.granted] + [(p, False) for p in row.withdrawn]
        said = [(p, g) for p, g in said if consent.explicit(candidate, p) is None]
        for purpose, granted in said:  # a list kept before never overrides the person's word
            consent.record(candidate, purpose, granted, self.now(), consent.IMPORT,
                           f"import {origin} line {row.line}")
        if why and _same(candidate, before):
            return candidate, "unchanged"
        if why:
            candidate["merges"].append({"at": self.now(), "reason": why})
        self.save(candidate)
        if why:
            self.event(candidate["id"], "merged", reason=why)
        else:
            self.event(candidate["id"], "candidate_created", source=row.channel)
        self.event(candidate["id"], "imported", source=row.channel, position=row.position,
                   applied_at=row.applied_at, file=origin, row=row.line)
        if rejected:
            self.event(candidate["id"], "rejected", reason=row.rejection_reason,
                       source="import", rejected_at=row.rejected_at)
        for purpose, _granted in said:
            self.event(candidate["id"], "consent", purpose=purpose,
                       **candidate["consents"][purpose])
        return candidate, "merged" if why else "created"


def _same(candidate: Candidate, before: Candidate) -> bool:
    """Nothing but the time a profile value was noted differs (a re-import changes nothing)."""
    def plain(c: Candidate) -> dict[str, Any]:
        return {**c, "provenance": [{**p, "at": ""} for p in c.get("provenance", [])]}
    return plain(candidate) == plain(before)


def _merge_details(candidate: Candidate, applicant: Applicant) -> None:
    if applicant.name and not candidate["name"]:
        candidate["name"] = applicant.name
        candidate["name_normalized"] = normalise_name(applicant.name)
    if applicant.email not in candidate["emails"]:
        candidate["emails"].append(applicant.email)
    for phone in applicant.phones:
        if phone not in candidate["phones"]:
            candidate["phones"].append(phone)
    if applicant.source not in candidate["sources"]:
        candidate["sources"].append(applicant.source)
    if applicant.position and not candidate["desired_role"]:
        candidate["desired_role"] = applicant.position
    if applicant.note and not candidate["career"]:
        candidate["career"] = applicant.note


def public(candidate: Candidate) -> Doc:
    """The JSON shape of INTERFACE.md (`candidates --json`)."""
    keys = ("id", "name", "emails", "phones", "source", "status", "applications", "tags",
            "relay_status", "reapplied", "created_at", "updated_at", "sources", "stages",
            "skills", "career", "qualifications", "desired_role", "rejection", "rescout_ok",
            "merges")
    return {key: candidate.get(key) for key in keys}


def put_documents(candidate: Candidate, documents: list[Document]) -> None:
    """The documents on the record, each content once (the caller saves)."""
    known = {d["sha256"] for d in candidate.setdefault("documents", [])}
    for document in documents:
        if document["sha256"] not in known:
            candidate["documents"].append(document)
            known.add(document["sha256"])
