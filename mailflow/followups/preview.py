"""`mailflow rules test`: the follow-ups that would be due by a given time, planned afresh from
the timeline with the rules under test, each with what it would do and whether its conditions
hold now. Reads only: nothing is planned, claimed or sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from mailflow.clock import iso, parse_iso
from mailflow.followups.conditions import Facts
from mailflow.followups.rows import FollowUpRow, as_followup_row, rows_for
from mailflow.followups.rules import FollowupRules, Rule
from mailflow.followups.window import Window
from mailflow.pool.records import Candidate, as_candidate, as_event
from mailflow.settings.config import Config
from mailflow.store.base import Doc, Store


def preview(store: Store, config: Config, rules: FollowupRules, at: datetime,
            candidate_id: str | None = None) -> list[Doc]:
    """`rules test`: the follow-ups that would be due by `at` (moved into the sending window),
    planned afresh from the timeline with `rules`, each with what it would do and whether its
    conditions hold now. Reads only."""
    zone, window, stamp = config.zone, Window.from_config(config), iso(at)
    notified = frozenset(config.privacy.notified_purposes)
    found = []
    for row in _rows(store, zone, rules, stamp, candidate_id).values():
        due = row.get("due_at")
        if row["state"] != "planned" or not due or due > stamp:
            continue
        rule, candidate = rules.get(row["rule"]), _candidate(store, row["candidate_id"])
        when = parse_iso(due)
        when = window.opening(when) if rule is not None and rule.send else when
        if when > at:
            continue
        found.append(_described(row, rule, candidate, when, notified))
    return sorted(found, key=lambda r: (r["due_at"], r["candidate_id"], r["rule"]))


def _rows(store: Store, zone: ZoneInfo, rules: FollowupRules, stamp: str,
          candidate_id: str | None) -> dict[str, FollowUpRow]:
    """The rows the timeline plans with `rules` (a stored row of the same id stands for its
    plan), then the stored rows due by `stamp`; of one candidate, or of all."""
    if candidate_id is not None:
        events: Iterable[Doc] = store.find("events", "candidate_id", candidate_id)
        known = store.find("followups", "candidate_id", candidate_id)
    else:
        events = (event for _seq, event in store.log("events"))
        known = store.below("followups", "due_at", stamp, 1_000_000)
    rows: dict[str, FollowUpRow] = {}
    for event in map(as_event, events):
        owner = event.get("candidate_id")
        candidate = _candidate(store, owner) if rules.field_rules and owner else None
        for row in rows_for(rules, event, candidate, zone, stamp):
            stored = store.get("followups", row["id"])
            rows.setdefault(row["id"], as_followup_row(stored) if stored else row)
    for row in map(as_followup_row, known):
        rows.setdefault(row["id"], row)
    return rows


def _candidate(store: Store, candidate_id: str) -> Candidate | None:
    doc = store.get("candidates", candidate_id)
    return as_candidate(doc) if doc is not None else None


def _described(row: FollowUpRow, rule: Rule | None, candidate: Candidate | None,
               when: datetime, notified: frozenset[str]) -> Doc:
    """One previewed follow-up: when, what it would do, and whether it would fire or why not."""
    why = ("rule no longer in followups.toml" if rule is None else
           "the candidate was erased" if candidate is None else
           rule.fails(Facts(candidate, notified)))
    return {"rule": row["rule"], "candidate_id": row["candidate_id"],
            "due_at": iso(when), "planned_due_at": row.get("planned_due_at"),
            "action": "; ".join(rule.actions()) if rule else "",
            "would": "skip" if why else "fire", "reason": why or "",
            "trigger": row.get("trigger")}
