"""The facts a KPI counts, read once from the store: each a kind, a candidate, a local day and the
candidate's source channel.

From the timeline (kind "events"): `applied` and `reapplied` are applications (a `reapplied`
one is also a re-application: a rejected candidate applying again), `rejected`, `invited` (a
Career Relay invitation), `relay_registered`, `relay_introduced`, `relay_hired` (hired
elsewhere, through the partner), `hired` (hired here: `candidate hire` or a `#mailflow
stage=採用` line; its day is the hire date given, not when it was recorded) and `left` (its day
is the leaving date), `referred` (an application that quoted a referral code: a referral). From
kind "clicks": human and scanner clicks on referral links, apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mailflow.kpi.period import Period
from mailflow.store.base import Store

# timeline event type -> the fact it is
EVENT_FACTS = {
    "applied": "application", "reapplied": "reapplication", "rejected": "rejection",
    "invited": "invitation", "relay_registered": "registration",
    "relay_introduced": "introduction", "relay_hired": "hired_elsewhere", "hired": "hire",
    "left": "left", "referred": "referral",
}
UNKNOWN_SOURCE = "unknown"


@dataclass(frozen=True)
class Fact:
    kind: str
    candidate_id: str
    day: Any  # datetime.date
    source: str
    data: dict[str, Any]


def sources(store: Store) -> dict[str, str]:
    """Each candidate's source channel (where they first came from), from the record."""
    return {str(c["id"]): str(c.get("source") or UNKNOWN_SOURCE) for c in store.scan("candidates")
            if c.get("id")}


def facts(store: Store, period: Period) -> Iterator[Fact]:
    """Every fact in the store, in timeline order (clicks after), whatever its day. A
    candidate's source is the one their `candidate_created` event names (it outlives an
    erasure), else their record's."""
    source_of = sources(store)
    found: list[tuple[str, str, str, dict[str, Any]]] = []
    for _seq, event in store.log("events"):
        cid = str(event.get("candidate_id") or "")
        data = event.get("data") or {}
        if event.get("type") == "candidate_created" and data.get("source"):
            source_of[cid] = str(data["source"])
        kind = EVENT_FACTS.get(str(event.get("type")))
        when = data.get("on") if kind in ("hire", "left") and data.get("on") else event.get("at")
        if kind is not None and when:
            found.append((kind, cid, str(when), dict(data)))
    for kind, cid, when, data in found:
        source = source_of.get(cid, UNKNOWN_SOURCE)
        if kind in ("application", "reapplication") and data.get("source"):
            source = str(data["source"])
        yield Fact(kind, cid, period.day(when), source, data)
    for click in store.scan("clicks"):
        kind = {"human": "human_click", "scanner": "scanner_click"}.get(str(click.get("class")))
        if kind and click.get("at"):
            cid = str(click.get("candidate_id") or "")
            yield Fact(kind, cid, period.day(str(click["at"])),
                       source_of.get(cid, UNKNOWN_SOURCE), {})
