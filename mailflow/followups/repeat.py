"""Repeating follow-ups (pure): a rule with `every = "1mo"` (and an end: `until = DATE` and/or
`times = N`) has one row per occurrence.

The trigger plans the first row as for any rule; when an occurrence leaves the schedule (sent,
or skipped because a condition did not hold or nothing was new), the next one is planned in the
same transaction, under a key made of the first row's id and the occurrence's number
(`newsletter:c_1#3`): written once, so a restart or a `kill -9` at any point plans and sends each
occurrence once. Occurrence n is due `every × (n − 1)` after the first one's planned time (on
the local calendar, so "1mo" from 31 January is 28 February, then 31 March), never drifting
with postponements. The chain ends at its end, when the rule leaves the file, when the candidate
is erased, or when the row is cancelled (an opt-out, a reply, `stop_followups`).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from mailflow.clock import iso, parse_iso
from mailflow.followups.rows import FollowUpRow, as_followup_row
from mailflow.followups.rules import FollowupRules, Rule
from mailflow.settings.durations import Delay
from mailflow.store.base import Store


def occurrence(row: FollowUpRow) -> int:
    return int(row.get("occurrence") or 1)


def past_end(rule: Rule, row: FollowUpRow, zone: ZoneInfo) -> bool:
    """Whether this occurrence lies after the rule's `until` date (local)."""
    planned = parse_iso(row.get("planned_due_at") or str(row["due_at"]))
    return rule.until is not None and planned.astimezone(zone).date() > rule.until


def next_occurrence(rule: Rule, row: FollowUpRow, zone: ZoneInfo,
                    now: str) -> FollowUpRow | None:
    """The row of the occurrence after `row`, or None when the rule's end is reached."""
    if rule.every is None:
        return None
    number = occurrence(row)
    if rule.times is not None and number >= rule.times:
        return None
    anchor = row.get("anchor") or row["planned_due_at"]
    due = Delay(rule.every.amount * number, rule.every.unit).after(parse_iso(anchor), zone)
    if rule.until is not None and due.astimezone(zone).date() > rule.until:
        return None
    first = row.get("first_id") or row["id"]
    return {"id": f"{first}#{number + 1}", "rule": rule.name,
            "candidate_id": row["candidate_id"], "due_at": iso(due), "planned_due_at": iso(due),
            "state": "planned", "reason": "", "trigger": row["trigger"], "created_at": now,
            "updated_at": now, "occurrence": number + 1, "anchor": anchor, "first_id": first}


def plan_next(store: Store, rules: FollowupRules, row: FollowUpRow, zone: ZoneInfo,
              now: str) -> FollowUpRow | None:
    """Plan the occurrence after `row` (in the caller's transaction), once; the new row, or
    None when there is none (no such rule, not repeating, ended, or the candidate is gone)."""
    rule = rules.get(row["rule"])
    if rule is None or rule.every is None:
        return None
    if store.get("candidates", row["candidate_id"]) is None:
        return None
    nxt = next_occurrence(rule, row, zone, now)
    if nxt is None or store.get("followups", nxt["id"]) is not None:
        return None
    store.put("followups", nxt["id"], nxt)
    return as_followup_row(dict(nxt))
