"""What is past its retention (APPI 法22: data no longer needed is erased without delay), pure.

`[privacy.retention]` sets the periods (settings/config.py `Retention`); each is counted on the
local calendar from a moment named below. Every finding says why, in words an admin can check:

- a candidate: `rejected` after the last activity for a rejected candidate for whom
  `talent_pool` does not hold, else `candidates` after the last activity (any change of the
  record, an application, a stage, a consent);
- an attachment of a candidate who is kept: `attachments` after it arrived;
- a quarantined mail or callback: `quarantine` after it was last changed;
- an outgoing mail once sent or given up (failed): `outbox` after that (its body is what goes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from mailflow.clock import parse_iso
from mailflow.pool import consent
from mailflow.pool.records import Candidate
from mailflow.settings.config import Retention
from mailflow.settings.durations import parse_delay

DONE_OUTBOX = ("sent", "failed")


@dataclass(frozen=True)
class Expired:
    what: str  # "candidate", "attachment", "quarantine", "outbox"
    key: str  # the candidate id, the attachment's sha256, the quarantine or outbox key
    candidate_id: str | None
    since: str  # the moment the period is counted from (ISO)
    why: str


def last_activity(candidate: Candidate) -> str:
    """The latest moment anything happened to the candidate (ISO, UTC)."""
    moments = [candidate.get("updated_at", ""), candidate.get("created_at", "")]
    moments += [str(a.get("at", "")) for a in candidate.get("applications", [])]
    moments += [str(s.get("at", "")) for s in candidate.get("stages", [])]
    moments += [str(c.get("at", "")) for c in (candidate.get("consents") or {}).values()]
    return max((m for m in moments if m), key=lambda m: parse_iso(m))


def _past(since: str, period: str, now: datetime, zone: ZoneInfo) -> bool:
    return parse_delay(period).after(parse_iso(since), zone) <= now


def expired_candidate(candidate: Candidate, policy: Retention, notified: Iterable[str],
                      now: datetime, zone: ZoneInfo) -> Expired | None:
    since = last_activity(candidate)
    pooled = consent.state(candidate, "talent_pool", notified).holds
    if candidate.get("status") == "rejected" and not pooled:
        period, rule = policy.rejected, "rejected, talent_pool does not hold"
    else:
        period, rule = policy.candidates, "last activity"
    if not _past(since, period, now, zone):
        return None
    return Expired("candidate", candidate["id"], candidate["id"], since,
                   f"{rule}; last activity {since[:10]}, kept {period}")


def expired_attachments(candidate: Candidate, policy: Retention, now: datetime,
                        zone: ZoneInfo) -> Iterator[Expired]:
    for document in candidate.get("documents", []):
        if document.get("stored") and _past(document["received_at"], policy.attachments, now,
                                            zone):
            yield Expired("attachment", document["sha256"], candidate["id"],
                          document["received_at"],
                          f"attachment arrived {document['received_at'][:10]}, kept "
                          f"{policy.attachments}")


def expired_quarantine(item: Mapping[str, Any], policy: Retention, now: datetime,
                       zone: ZoneInfo) -> Expired | None:
    since = str(item.get("updated_at", ""))
    if not since or not _past(since, policy.quarantine, now, zone):
        return None
    return Expired("quarantine", str(item["key"]), None, since,
                   f"quarantined {item.get('state', '')}, last changed {since[:10]}, kept "
                   f"{policy.quarantine}")


def expired_outbox(item: Mapping[str, Any], policy: Retention, now: datetime,
                   zone: ZoneInfo) -> Expired | None:
    if item.get("state") not in DONE_OUTBOX or not item.get("raw"):
        return None
    since = str(item.get("sent_at") or item.get("updated_at") or "")
    if not since or not _past(since, policy.outbox, now, zone):
        return None
    return Expired("outbox", str(item["id"]), item.get("candidate_id"), since,
                   f"outgoing mail {item['state']} {since[:10]}, body kept {policy.outbox}")
