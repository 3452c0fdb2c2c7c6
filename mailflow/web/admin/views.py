"""What each admin page shows, read from the store (plain dicts for the templates; no I/O but
the store's, no HTML).

The pool's search and filters (`Filters`) match as `mailflow candidates --search` does: the term
folded with NFKC and lower-cased, in name, addresses, phones, role, tags, skills and career. No
page puts personal data in a URL: candidates are named by their id only.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from mailflow.clock import Clock
from mailflow.kpi.report import compute
from mailflow.mailbox.handoff import STATES, quarantine_items
from mailflow.outgoing.records import public as public_outbox
from mailflow.pool.talent import TalentPool
from mailflow.relay.ledger import ReferralLedger, read_entries
from mailflow.settings.config import Config
from mailflow.store.base import Store

POOL_LIMIT = 500
CHART_MONTHS = 24
OUTBOX_ORDER = ("unknown", "failed", "queued", "sending", "sent")
OUTBOX_ACTIONS = {"unknown": ("resend", "mark_sent"), "failed": ("resend", "mark_sent"),
                  "queued": ("mark_sent",)}
# the overview's tiles, in order (the report has more; all of them are in the table below)
TILES = ("applications", "rejections", "invitations", "human_clicks", "scanner_clicks",
         "registrations", "introductions", "hires", "slots_earned", "slots_redeemed",
         "slots_available", "cost_avoided_yen", "reapplication_rate", "referral_hire_rate")


def kpis(store: Store, config: Config, clock: Clock, start: date | None,
         end: date | None) -> dict[str, Any]:
    """The report `mailflow report` prints, by the same function."""
    return compute(store, config, start, end, clock=clock)


@dataclass(frozen=True)
class Filters:
    term: str = ""
    status: str = ""
    source: str = ""
    tag: str = ""
    skill: str = ""
    consent: str = ""  # "" any, or "purpose:yes" / "purpose:no"

    @classmethod
    def of(cls, form: Mapping[str, Any]) -> Filters:
        return cls(*(str(form.get(k) or "").strip() for k in
                     ("term", "status", "source", "tag", "skill", "consent")))

    @property
    def names(self) -> list[str]:
        """Which filters are set (for the audit log: names only, never the values)."""
        return [k for k, v in vars(self).items() if v]


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def _skills(candidate: Mapping[str, Any]) -> list[str]:
    found = []
    for skill in candidate.get("skills") or []:
        found.append(str(skill.get("value", skill) if isinstance(skill, Mapping) else skill))
    return found


def _consented(candidate: Mapping[str, Any], purpose: str) -> bool:
    state = (candidate.get("consents") or {}).get(purpose)
    if isinstance(state, Mapping):
        return bool(state.get("granted"))
    return bool(state)


def matches(candidate: Mapping[str, Any], filters: Filters) -> bool:
    if filters.status and candidate.get("status") != filters.status:
        return False
    if filters.source and candidate.get("source") != filters.source:
        return False
    if filters.tag and filters.tag not in (candidate.get("tags") or []):
        return False
    if filters.skill and _fold(filters.skill) not in map(_fold, _skills(candidate)):
        return False
    if filters.consent:
        purpose, _, want = filters.consent.partition(":")
        if _consented(candidate, purpose) != (want == "yes"):
            return False
    if filters.term:
        haystack = " ".join(str(candidate.get(k, "")) for k in
                            ("name", "name_normalized", "emails", "phones", "desired_role",
                             "tags", "skills", "career"))
        return _fold(filters.term) in _fold(haystack)
    return True


def pool(store: Store, clock: Clock, filters: Filters) -> dict[str, Any]:
    everyone = list(TalentPool(store, clock).all())
    found = [c for c in everyone if matches(c, filters)]
    found.sort(key=lambda c: str(c.get("updated_at", "")), reverse=True)
    return {
        "candidates": [_row(c) for c in found[:POOL_LIMIT]], "count": len(found),
        "statuses": sorted({str(c.get("status")) for c in everyone if c.get("status")}),
        "sources": sorted({str(c.get("source")) for c in everyone if c.get("source")}),
        "tags": sorted({str(t) for c in everyone for t in c.get("tags") or []}),
        "purposes": sorted({str(p) for c in everyone for p in c.get("consents") or {}}),
    }


def _row(c: Mapping[str, Any]) -> dict[str, Any]:
    applications = c.get("applications") or []
    position = (applications[-1].get("position") if applications else "") or c.get(
        "desired_role") or ""
    return {"id": c["id"], "name": c.get("name") or "", "status": c.get("status") or "",
            "source": c.get("source") or "", "relay": c.get("relay_status") or "",
            "position": position, "emails": ", ".join(c.get("emails") or []),
            "updated_at": str(c.get("updated_at") or "")[:16]}


def candidate(store: Store, clock: Clock, candidate_id: str) -> dict[str, Any] | None:
    talent = TalentPool(store, clock)
    found = talent.get(candidate_id)
    if found is None:
        return None
    consents = []
    for purpose, state in sorted((found.get("consents") or {}).items()):
        detail = state if isinstance(state, Mapping) else {"granted": bool(state)}
        consents.append({"purpose": purpose, "granted": bool(detail.get("granted")),
                         "at": str(detail.get("at") or ""), "how": str(detail.get("how") or "")})
    timeline = [{"type": e.get("type", ""), "at": str(e.get("at", ""))[:19],
                 "detail": _detail(e)} for e in talent.timeline(candidate_id)]
    return {**_row(found), "phones": ", ".join(found.get("phones") or []),
            "tags": ", ".join(found.get("tags") or []), "skills": ", ".join(_skills(found)),
            "applications": found.get("applications") or [], "consents": consents,
            "timeline": timeline}


def _detail(event: Mapping[str, Any]) -> str:
    skip = {"type", "at", "candidate_id", "raw"}
    return "; ".join(f"{k}={v}" for k, v in event.items() if k not in skip and v not in
                     (None, "", [], {}))[:300]


def ledger(store: Store, book: ReferralLedger) -> dict[str, Any]:
    balance = book.balance()
    entries = []
    for seq, entry in read_entries(store):
        if entry is None:
            entries.append({"seq": seq, "kind": "(unreadable)", "at": "", "candidate_id": "",
                            "paid_for": ""})
            continue
        # a slot redeemed for a hire (`candidate hire --via slot`) names the hired candidate and
        # the day; one redeemed by `ledger redeem --note` has only its note
        redeemed = entry["kind"] == "slot_redeemed"
        hire = entry.get("candidate_id") if redeemed else None
        entries.append({"seq": seq, "kind": entry["kind"], "at": entry["at"][:19],
                        "candidate_id": "" if redeemed else entry.get("candidate_id") or "",
                        "paid_for": str(entry.get("note") or "") if redeemed else "",
                        "hire": str(hire or ""),
                        "hired_on": str(entry.get("occurred_at") or "") if hire else ""})
    return {"balance": balance, "available": balance.slots_available, "entries": entries}


def followups(store: Store) -> list[dict[str, Any]]:
    rows = [dict(r) for r in store.scan("followups")]
    rows.sort(key=lambda r: str(r.get("due_at", "")))
    return [{"id": str(r.get("id", "")), "due_at": str(r.get("due_at", ""))[:16],
             "state": str(r.get("state", "")), "rule": str(r.get("rule", "")),
             "candidate_id": str(r.get("candidate_id", ""))} for r in rows]


def outbox(store: Store) -> list[dict[str, Any]]:
    items = [public_outbox(d) for state in OUTBOX_ORDER for d in store.find("outbox", "state",
                                                                            state)]
    return [{"id": i["id"], "state": i["state"], "attempts": i["attempts"],
             "purpose": i["purpose"], "to": ", ".join(i["to"]),
             "updated_at": str(i["updated_at"])[:19], "error": i.get("last_error") or "",
             "candidate_id": str(dict(i).get("candidate_id") or ""),
             "actions": OUTBOX_ACTIONS.get(i["state"], ())} for i in items]


def quarantine(store: Store) -> list[dict[str, Any]]:
    out = []
    for item in quarantine_items(store, STATES):
        mail = item.get("role") != "callback"
        out.append({"id": item["id"], "state": item["state"], "attempts": item["attempts"],
                    "reason": item["reason"], "updated_at": item["updated_at"][:19],
                    "where": f"{item.get('folder')}:{item.get('uid')}" if mail
                    else f"callback:{item.get('event_id')}",
                    "replayable": mail and item["state"] != "replayed"})
    return out


def months_with_figures(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report's months from the first to the last with any figure (a period of many years
    with activity in three months is a chart of those months and the quiet ones between)."""
    busy = [n for n, row in enumerate(rows)
            if any(isinstance(v, int) and v for k, v in row.items() if k != "month")]
    return rows[busy[0]:busy[-1] + 1] if busy else []


def rule_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.toml")) if folder.is_dir() else []


def as_rows(report: Mapping[str, Any], keys: Iterable[str]) -> list[tuple[str, Any]]:
    return [(k, report[k]) for k in keys if k in report]
