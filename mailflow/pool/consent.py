"""Consent per purpose (APPI), pure.

The purposes the company's application notice states (`[privacy] notified_purposes`) hold for
every candidate: use within notified purposes needs no further consent. A candidate's explicit
word overrides, per purpose: `candidate["consents"][purpose] = {"state": "granted" | "withdrawn",
"at": ISO time, "how": "unsubscribe link (one-click)" …, "evidence": …}` — a withdrawal stops a
notified purpose, a grant opens one that was not notified.

The candidate's word comes in by these channels (`how`), each with its evidence: the consent page
(`/c/{token}`: the request id), a reply keyword (the reply's Message-ID), an import column (file
and line), the Career Relay registration callback (its event id), an unsubscribe link, and an
admin command (the admin's reason as `how`, who ran it as evidence).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailflow.pool.records import Candidate, ConsentEntry

STATES = ("granted", "withdrawn")
PAGE = "consent page"
REPLY = "reply keyword"
IMPORT = "import"
REGISTRATION = "Career Relay registration"


@dataclass(frozen=True)
class Held:
    holds: bool
    why: str


def state(candidate: Candidate, purpose: str, notified: Iterable[str]) -> Held:
    """Whether `purpose` holds for `candidate`, and why."""
    record = (candidate.get("consents") or {}).get(purpose)
    if isinstance(record, dict) and record.get("state") in STATES:
        granted = record["state"] == "granted"
        said = "granted" if granted else "withdrawn"
        return Held(granted, f"{said} {str(record.get('at', ''))[:10]} ({record.get('how', '')})")
    if purpose in set(notified):
        return Held(True, "a notified purpose")
    return Held(False, "not a notified purpose and not granted")


def record(candidate: Candidate, purpose: str, granted: bool, at: str, how: str,
           evidence: str = "") -> ConsentEntry:
    """Record the candidate's explicit word on `purpose` on the candidate document."""
    entry: ConsentEntry = {"state": "granted" if granted else "withdrawn", "at": at, "how": how}
    if evidence:
        entry["evidence"] = evidence
    candidate.setdefault("consents", {})[purpose] = entry
    return entry


def explicit(candidate: Candidate, purpose: str) -> ConsentEntry | None:
    """The candidate's own recorded word on `purpose`, if any."""
    entry = (candidate.get("consents") or {}).get(purpose)
    return entry if isinstance(entry, dict) and entry.get("state") in STATES else None
