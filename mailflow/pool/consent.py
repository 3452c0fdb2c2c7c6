"""Consent per purpose (APPI), pure.

The purposes the company's application notice states (`[privacy] notified_purposes`) hold for
every candidate: use within notified purposes needs no further consent. A candidate's explicit
word overrides, per purpose: `candidate["consents"][purpose] = {"state": "granted" | "withdrawn",
"at": ISO time, "how": "unsubscribe link (one-click)" …}` — a withdrawal stops a notified
purpose, a grant opens one that was not notified.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailflow.pool.records import Candidate, ConsentEntry

STATES = ("granted", "withdrawn")


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


def record(candidate: Candidate, purpose: str, granted: bool, at: str, how: str
           ) -> ConsentEntry:
    """Record the candidate's explicit word on `purpose` on the candidate document."""
    entry: ConsentEntry = {"state": "granted" if granted else "withdrawn", "at": at, "how": how}
    candidate.setdefault("consents", {})[purpose] = entry
    return entry
