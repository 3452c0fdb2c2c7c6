"""Erasure (APPI 法35): one person's personal data removed everywhere mailflow keeps it, while the
aggregates survive without identity — the ledger still verifies and counts, the KPIs (events by
type, source and month; clicks by class) do not change.

What happens per store kind (`store.base.INDEXES`), in one transaction, then `store.scrub()` so
the bytes are gone from the files too (SQLite free pages and WAL; TinyDB rewrites its file):

- candidates: the person's document is deleted (names, addresses, phones, résumé names, career,
  notes, consents, merges, Message-IDs).
- events (append-only, `redact`): each of their events keeps its type, time, candidate id and
  the categorical fields of `KEPT_EVENT_DATA` (source, stage, purpose, ids of other records …);
  names, addresses, subjects, reasons, notes, Message-IDs and file names go.
- attachments: their files under `attachments/` are overwritten and removed, unless another
  candidate keeps a document with the same sha256 (then the file stays: it is theirs too).
- tokens: deleted (their links and consent and unsubscribe pages answer 404 from then on).
- network_links (`mailflow.network`): deleted; their entry in the network pool is withdrawn by
  the next `mailflow network publish` (its link gone, nothing leads back to them meanwhile).
- followups: planned ones cancelled ("erased"); the others kept (no personal data in a row).
- provisions (法29 records of provision): kept as the record the law asks for — what items, to
  whom, when, under which consent — with the consent's free text (an admin's reason) dropped;
  the record never held the values handed over.
- outbox: every record addressed to them, about them (`candidate_id`) or whose mail names them
  loses its body (`raw`) and their addresses; one not sent yet is given up ("failed"). The
  record (Message-ID, purpose, states, times) stays: it keeps Sent from being read as new mail.
- quarantine: every item whose mail (decoded: base64, ISO-2022-JP, CP932, UTF-8) carries their
  address or phone, and every callback for their referral code, is deleted.
- journal: a journaled draft whose bytes name them loses them; their pending hand-over to the
  partner is given up ("failed": nothing leaves any more).
- examples: HR's sentences kept for learning have the person's names masked (〇〇).
- messages, checkpoints: kept — hashes and UIDs, no personal data; they keep the person's mails
  still in the mailbox from being taken in again.
- ledger, callbacks, clicks, reviews: kept unchanged. They hold ids, the opaque referral code,
  times and categories, never a name or an address; once the candidate document is gone, a
  candidate id points to no one. The ledger's entries are hash-chained and sealed: untouched.
- audit: kept; the erasure is recorded there (`erase`, the candidate id, the reason with the
  person masked, the counts of what went — never the erased data).
- settings: kept (the ledger's seal, the follow-up rate window, the last purge).

Logs: mailflow's log lines name messages and ids, never a person (`mailflow.logs`), and go to
stderr or the journal only: mailflow keeps no copies of its own to erase.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailflow.clock import Clock, iso
from mailflow.errors import MailflowError
from mailflow.pool import audit, consent
from mailflow.pool.records import Candidate, as_candidate
from mailflow.pool.talent import TalentPool
from mailflow.privacy.person import Person
from mailflow.privacy.sweep import sweep_raw_kinds
from mailflow.store.base import Doc, Store

log = logging.getLogger("mailflow.privacy")

KEPT_EVENT_DATA = frozenset({
    "source", "stage", "purpose", "state", "rescout", "invited", "first", "delivered",
    "rejection_id", "provision_id", "handover_id", "followup_id", "outbox_id", "event_id",
    "recipient", "items", "occurred_at", "status_moved", "ledger", "rule", "applied_at",
    "rejected_at", "verdict", "kind", "human",
    "on", "via", "slot_seq", "hired_on",  # a hire and its end, for the report's figures
})
CHANNELS = frozenset({consent.PAGE, consent.REPLY, consent.IMPORT, consent.REGISTRATION})


class NoSuchCandidate(MailflowError):
    """Nobody in the pool has that id or address (exit code 1)."""


@dataclass
class Erasure:
    """What one erasure removed, by kind: counts only."""

    candidate_id: str
    reason: str
    removed: Counter[str] = field(default_factory=Counter)
    scrubbed: bool | None = None  # the store's files scrubbed (None: left to the caller)

    def counts(self) -> dict[str, int]:
        return dict(sorted((+self.removed).items()))

    def as_json(self) -> dict[str, Any]:
        return {"candidate_id": self.candidate_id, "reason": self.reason,
                "removed": self.counts(), "scrubbed": self.scrubbed}


def attachment_path(data_dir: Path, sha256: str) -> Path:
    return data_dir / "attachments" / sha256[:2] / sha256


def erase(store: Store, clock: Clock, data_dir: Path, ref: str, reason: str,
          actor: str) -> Erasure:
    """Erase the candidate `ref` (id or email) and scrub the store (`mailflow erase`)."""
    candidate = TalentPool(store, clock).lookup(ref)
    if candidate is None:
        raise NoSuchCandidate(f"no candidate {ref}")
    (done,) = erase_candidates(store, clock, data_dir, [candidate], {candidate["id"]: reason},
                               actor)
    done.scrubbed = store.scrub()
    return done


def erase_candidates(store: Store, clock: Clock, data_dir: Path, candidates: list[Candidate],
                     reasons: Mapping[str, str], actor: str) -> list[Erasure]:
    """Erase these candidates in one transaction (the caller scrubs the store afterwards)."""
    people = [Person.of(c) for c in candidates]
    done = {p.candidate_id: Erasure(p.candidate_id, p.mask(reasons[p.candidate_id]))
            for p in people}
    now = iso(clock.now())
    with store.transaction():
        for person in people:
            removed = done[person.candidate_id].removed
            removed["events_redacted"] += _events(store, person)
            removed["tokens"] += _delete_found(store, "tokens", person.candidate_id)
            removed["network_links"] += _delete_found(store, "network_links",
                                                      person.candidate_id)
            removed["followups_cancelled"] += _followups(store, person, now)
            removed["provisions_redacted"] += _provisions(store, person)
        for candidate_id, kind in sweep_raw_kinds(store, people, now):
            done[candidate_id].removed[kind] += 1
        _attachments(store, data_dir, candidates, done)
        for person in people:
            store.delete("candidates", person.candidate_id)
            done[person.candidate_id].removed["candidate"] = 1
        for erasure in done.values():
            audit.record(store, clock, actor, "erase", erasure.candidate_id,
                         {"reason": erasure.reason, "removed": erasure.counts()})
    for erasure in done.values():
        log.info("candidate %s erased: %s", erasure.candidate_id,
                 ", ".join(f"{k} {v}" for k, v in erasure.counts().items()))
    return list(done.values())


# -- per kind ----------------------------------------------------------------------------------


def redacted_event(event: Mapping[str, Any], person: Person) -> Doc:
    """The event without personal data: type, time, candidate id, categorical fields."""
    data = event.get("data") or {}
    kept = {k: v for k, v in data.items() if k in KEPT_EVENT_DATA and _plain(v)
            and not (isinstance(v, str) and person.named_in(v))}
    return {"candidate_id": event.get("candidate_id"), "type": event.get("type"),
            "at": event.get("at"), "data": kept, "erased": True}


def _plain(value: Any) -> bool:
    scalar = (str, int, float, bool, type(None))
    return isinstance(value, scalar) or (isinstance(value, list)
                                         and all(isinstance(v, scalar) for v in value))


def _events(store: Store, person: Person) -> int:
    changed = 0
    for key in store.find_keys("events", "candidate_id", person.candidate_id):
        event = store.get("events", key)
        if event is None or event.get("erased"):
            continue
        store.redact("events", int(key), redacted_event(event, person))
        changed += 1
    return changed


def _delete_found(store: Store, kind: str, candidate_id: str) -> int:
    keys = store.find_keys(kind, "candidate_id", candidate_id)
    return sum(store.delete(kind, key) for key in keys)


def _followups(store: Store, person: Person, now: str) -> int:
    cancelled = 0
    for row in store.find("followups", "candidate_id", person.candidate_id):
        if row.get("state") == "planned":
            row.update(state="cancelled", reason="erased", was_due_at=row.get("due_at"),
                       due_at=None, updated_at=now)
            store.put("followups", str(row["id"]), row)
            cancelled += 1
    return cancelled


def _provisions(store: Store, person: Person) -> int:
    changed = 0
    for key in store.find_keys("provisions", "candidate_id", person.candidate_id):
        record = store.get("provisions", key)
        if record is None or record.get("erased"):
            continue
        said = record.get("consent") or {}
        kept = {k: said[k] for k in ("state", "at") if k in said}
        if said.get("how") in CHANNELS:
            kept["how"] = said["how"]
        if isinstance(said.get("evidence"), str) and not person.named_in(said["evidence"]):
            kept["evidence"] = said["evidence"]
        store.put("provisions", key, {**record, "consent": kept or None, "erased": True})
        changed += 1
    return changed


def _attachments(store: Store, data_dir: Path, erased: list[Candidate],
                 done: Mapping[str, Erasure]) -> None:
    """Remove the erased candidates' files that no other candidate keeps."""
    wanted = {d["sha256"]: c["id"] for c in erased for d in c.get("documents", [])
              if d.get("stored")}
    if not wanted:
        return
    shared = kept_by_others(store, set(wanted), {c["id"] for c in erased})
    for sha256, candidate_id in wanted.items():
        removed = done[candidate_id].removed
        if sha256 in shared:
            removed["attachments_kept_shared"] += 1
        elif remove_file(attachment_path(data_dir, sha256)):
            removed["attachments"] += 1


def kept_by_others(store: Store, hashes: set[str], besides: Iterable[str]) -> set[str]:
    """Which of these attachment hashes a candidate not in `besides` still keeps."""
    skip, kept = set(besides), set()
    for doc in store.scan("candidates"):
        if doc.get("id") in skip:
            continue
        for document in as_candidate(doc).get("documents", []):
            if document.get("stored") and document.get("sha256") in hashes:
                kept.add(document["sha256"])
    return kept


def remove_file(path: Path) -> bool:
    """Overwrite the file with zeros, then remove it (and its folder when left empty)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    with open(path, "r+b") as file:
        file.write(b"\0" * size)
        file.flush()
        os.fsync(file.fileno())
    path.unlink()
    with contextlib.suppress(OSError):  # other files still in it
        path.parent.rmdir()
    return True
