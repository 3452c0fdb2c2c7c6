"""Retention applied (APPI 法22: data no longer needed is erased without delay): what
`pool.retention` finds past its period over the whole store, and its removal. `mailflow purge`
and the daemon's daily job (`desk`) both come here.

- a candidate past retention is erased, by the same code as `mailflow erase`, with the reason
  "retention: <why>" (their attachments go with them);
- an attachment past `attachments` of a candidate who is kept: its document is marked not
  stored (`stored: false`, `removed_at`) and its file removed unless another candidate still
  keeps the same file;
- a quarantined mail or callback past `quarantine`: deleted;
- an outgoing mail sent or given up past `outbox`: its body (`raw`) is dropped, the record (to
  whom, when, its Message-ID, its states) stays.

A dry run lists the same findings, each with why, and changes nothing. A real run records an
audit entry `purge` with the counts (and an `erase` entry per candidate), and its time in the
store's settings (`privacy_purge`), from which the daemon knows when the next one is due.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from mailflow.clock import Clock, iso
from mailflow.pool import audit
from mailflow.pool.records import Candidate, as_candidate
from mailflow.pool.retention import (
    Expired,
    expired_attachments,
    expired_candidate,
    expired_outbox,
    expired_quarantine,
)
from mailflow.privacy.erase import attachment_path, erase_candidates, kept_by_others, remove_file
from mailflow.privacy.person import Person
from mailflow.settings.config import Config
from mailflow.store.base import Store

LAST_RUN = "privacy_purge"  # settings document: {"last_run": ISO, "counts": {...}}


@dataclass
class Purged:
    """A purge's report (`mailflow purge --json`) and the people it erased (for their mail)."""

    report: dict[str, Any]
    erased: list[Person] = field(default_factory=list)


def findings(store: Store, clock: Clock, config: Config) -> list[Expired]:
    """Everything past its retention now, candidates first (pure reads)."""
    policy, zone, now = config.privacy.retention, config.zone, clock.now()
    notified = config.privacy.notified_purposes
    found: list[Expired] = []
    for doc in store.scan("candidates"):
        candidate = as_candidate(doc)
        expired = expired_candidate(candidate, policy, notified, now, zone)
        found += [expired] if expired else list(expired_attachments(candidate, policy, now, zone))
    for item in store.scan("quarantine"):
        found += [e for e in [expired_quarantine(item, policy, now, zone)] if e]
    for item in store.scan("outbox"):
        found += [e for e in [expired_outbox(item, policy, now, zone)] if e]
    return found


def purge(store: Store, clock: Clock, config: Config, actor: str,
          dry_run: bool = False) -> Purged:
    """Find what is past retention and (unless `dry_run`) remove it and scrub the store."""
    found = findings(store, clock, config)
    counts = Counter(e.what for e in found)
    report: dict[str, Any] = {"dry_run": dry_run, "at": iso(clock.now()),
                              "items": [asdict(e) for e in found], "counts": dict(counts)}
    if dry_run:
        return Purged(report)
    now = iso(clock.now())
    with store.transaction():
        erased = _candidates(store, clock, config, found, actor)
        counts["attachment_files"] = _attachments(store, config, found, now)
        for item in found:
            if item.what == "quarantine":
                store.delete("quarantine", item.key)
            elif item.what == "outbox":
                _drop_body(store, item.key, now)
        audit.record(store, clock, actor, "purge", "", {"counts": dict(counts)})
        store.put("settings", LAST_RUN, {"last_run": now, "counts": dict(counts)})
    report["counts"] = dict(counts)
    report["scrubbed"] = store.scrub()
    return Purged(report, erased)


def _candidates(store: Store, clock: Clock, config: Config, found: list[Expired],
                actor: str) -> list[Person]:
    candidates: list[Candidate] = []
    reasons: dict[str, str] = {}
    for item in found:
        doc = store.get("candidates", item.key) if item.what == "candidate" else None
        if doc is not None:
            candidates.append(as_candidate(doc))
            reasons[item.key] = f"retention: {item.why}"
    if not candidates:
        return []
    erase_candidates(store, clock, config.data_dir, candidates, reasons, actor)
    return [Person.of(c) for c in candidates]


def _attachments(store: Store, config: Config, found: list[Expired], now: str) -> int:
    """Mark the expired documents not stored; remove the files nobody keeps any more."""
    hashes: set[str] = set()
    for item in found:
        doc = store.get("candidates", item.candidate_id or "") if item.what == "attachment" \
            else None
        if doc is None:
            continue
        for document in doc.get("documents", []):
            if document.get("sha256") == item.key and document.get("stored"):
                document.update(stored=False, removed_at=now)
        store.put("candidates", str(doc["id"]), doc)
        hashes.add(item.key)
    kept = kept_by_others(store, hashes, ()) if hashes else set()
    return sum(remove_file(attachment_path(config.data_dir, h)) for h in hashes - kept)


def _drop_body(store: Store, key: str, now: str) -> None:
    doc = store.get("outbox", key)
    if doc is not None and "raw" in doc:
        del doc["raw"]
        doc.update(body_dropped_at=now)
        store.put("outbox", key, doc)


def last_run(store: Store) -> str | None:
    doc = store.get("settings", LAST_RUN)
    return str(doc["last_run"]) if doc and doc.get("last_run") else None
