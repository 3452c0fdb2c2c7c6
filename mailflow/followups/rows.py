"""A follow-up row and its life: which rows a timeline event plans, a row's id and due
time, and how a row leaves the schedule (sent, skipped or cancelled).

A row is a `FollowUpRow` — `{id, rule, candidate_id, due_at (UTC ISO), state, reason, …}` — in
the "followups" kind; `once` rules have one row per candidate ever, others one per triggering
instance. A document read from the store becomes a row in one place, `as_followup_row`. Pure:
the store only through its contract.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NotRequired, TypedDict, cast
from zoneinfo import ZoneInfo

from mailflow.clock import iso, parse_iso
from mailflow.followups.rules import FollowupRules, Rule
from mailflow.pool.records import Candidate, TimelineEvent
from mailflow.store.base import Doc, Store

# -- the row --------------------------------------------------------------------------------------


class Trigger(TypedDict):
    """What planned a row: a timeline event (`event`, its type) or a date field of the
    candidate (`field`), and its time."""

    at: str
    event: NotRequired[str]
    field: NotRequired[str]
    opening_id: NotRequired[str]  # an `opening_matched` event's opening (the template's opening_*)


class FollowUpRow(TypedDict):
    """One follow-up of one candidate (kind "followups"): planned, then sent, skipped or
    cancelled."""

    id: str
    rule: str
    candidate_id: str
    due_at: str | None  # None once the row has left the schedule (`finish`)
    planned_due_at: str
    state: str  # "planned" | "sent" | "skipped" | "cancelled"
    reason: str
    trigger: Trigger
    created_at: str
    updated_at: str
    was_due_at: NotRequired[str | None]  # `due_at` when it left the schedule
    sent_at: NotRequired[str]  # carried out (state "sent")
    outbox_id: NotRequired[str]  # … and mailed: the mail, its Message-ID, its purpose
    message_id: NotRequired[str]
    mailed: NotRequired[bool]
    purpose: NotRequired[str]
    occurrence: NotRequired[int]  # a repeating rule's (`every`): 1, 2, … (`followups.repeat`)
    anchor: NotRequired[str]  # … the first occurrence's planned time, each one counted from it
    first_id: NotRequired[str]  # … the first occurrence's row id
    post: NotRequired[str]  # the post it mailed (a rule with `content`)


def as_followup_row(doc: Doc) -> FollowUpRow:
    """A follow-up document read from the store, as the row it is."""
    return cast(FollowUpRow, doc)


# -- planning: which rows an event creates (pure) -----------------------------------------------


def is_human_click(event: TimelineEvent) -> bool:
    data = event.get("data") or {}
    verdict = data.get("verdict", data.get("kind", "human"))
    return verdict != "scanner" and data.get("human", True) is not False


def field_value(candidate: Candidate, field: str) -> str | None:
    if field == "rejection.at":
        rejection = candidate.get("rejection")
        return rejection.get("at") if rejection else None
    if field == "last_applied_at":
        applications = candidate.get("applications") or []
        return applications[-1].get("applied_at") if applications else None
    value = candidate.get(field)
    return str(value) if value else None


def row_id(rule: Rule, candidate_id: str, instance: str) -> str:
    """`once` rules have one row per candidate ever; others one per triggering instance."""
    return f"{rule.name}:{candidate_id}" if rule.once else f"{rule.name}:{candidate_id}:{instance}"


def new_row(rule: Rule, candidate_id: str, instance: str, base: datetime, zone: ZoneInfo,
            now: str, trigger: Trigger) -> FollowUpRow:
    due = iso(rule.delay.after(base, zone))
    return {"id": row_id(rule, candidate_id, instance), "rule": rule.name,
            "candidate_id": candidate_id, "due_at": due, "planned_due_at": due,
            "state": "planned", "reason": "", "trigger": trigger, "created_at": now,
            "updated_at": now}


def rows_for(rules: FollowupRules, event: TimelineEvent, candidate: Candidate | None,
             zone: ZoneInfo, now: str) -> list[FollowUpRow]:
    """The rows one timeline event plans (`candidate` is needed only by date-field rules)."""
    candidate_id = event.get("candidate_id")
    if not candidate_id:
        return []
    rows = []
    for rule in rules.for_event(str(event["type"])):
        if rule.trigger == "event:clicked" and not is_human_click(event):
            continue
        trigger: Trigger = {"event": event["type"], "at": event["at"]}
        opening = (event.get("data") or {}).get("opening_id")
        if opening:
            trigger["opening_id"] = str(opening)
        rows.append(new_row(rule, candidate_id, f"{event['type']}@{event['at']}",
                            parse_iso(event["at"]), zone, now, trigger))
    for rule in rules.field_rules if candidate is not None else ():
        assert candidate is not None
        value = field_value(candidate, rule.trigger[6:])
        try:
            base = parse_iso(value) if value else None
        except ValueError:
            base = None
        if base is not None:
            trigger = {"field": rule.trigger[6:], "at": str(value)}
            rows.append(new_row(rule, candidate_id, str(value), base, zone, now, trigger))
    return rows


# -- leaving the schedule -----------------------------------------------------------------------


def finish(store: Store, row: FollowUpRow, state: str, reason: str, now: str,
           **more: Any) -> FollowUpRow:
    """A row leaves the schedule: its due time leaves the `due_at` index (kept as
    `was_due_at`), so a tick never meets it again. `more`: further fields of the row (what a
    row that was carried out records)."""
    fields: Doc = cast(Doc, row)  # changed in place, with fields named at run time
    fields.update(state=state, reason=reason, was_due_at=row.get("due_at"), due_at=None,
                  updated_at=now, **more)
    store.put("followups", row["id"], row)
    return row


def cancel_planned(store: Store, candidate_id: str, reason: str, now: str,
                   keep: str | None = None) -> int:
    """Cancel every planned follow-up of a candidate (all but `keep`); how many."""
    cancelled = 0
    for row in map(as_followup_row, store.find("followups", "candidate_id", candidate_id)):
        if row["state"] == "planned" and row["id"] != keep:
            finish(store, row, "cancelled", reason, now)
            cancelled += 1
    return cancelled
