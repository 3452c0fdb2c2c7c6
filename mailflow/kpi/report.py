"""The report: every KPI for a period, as one JSON-able dict (`compute`); `mailflow report` and
the admin pages show it.

Figures count facts (`facts`) whose local day falls in the period (`start` … `end`, inclusive,
in `config.zone`; None: open-ended). Rates are None where their denominator is 0:

- conversion at each step: invitations / rejections, human clicks / invitations, registrations /
  invitations, introductions / registrations, hires elsewhere / introductions;
- `reapplication_rate` (再応募率): re-applications / rejected candidates (distinct);
- `referrals` (リファラル紹介): applications that quoted a candidate's referral code (their
  source is `referral`, so `by_source` has them too);
- `referral_hire_rate` (紹介採用率): hires via `slot` or `referral` / all hires;
- `cost_avoided_yen`: slots redeemed × `[kpi] agency_fee_yen`; `cost_per_hire_yen`: a hire
  through a free slot cost nothing, every other hire `[kpi] usual_cost_per_hire_yen`, averaged,
  and `cost_per_hire_change_yen` against the usual cost (negative: cheaper);
- retention (定着) of the period's hires at 3, 6 and 12 months as of `now`, overall and per
  source channel (`retention`).

Slots come from the ledger's entries (`slots`): earned and redeemed in the period, available as
of its end.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime
from typing import Any

from mailflow.clock import Clock, SystemClock
from mailflow.kpi.facts import Fact, facts
from mailflow.kpi.period import Period, month_of, months_between
from mailflow.kpi.retention import retentions
from mailflow.kpi.slots import slot_figures
from mailflow.settings.config import Config
from mailflow.store.base import Store

COUNTED = ("applications", "rejections", "invitations", "human_clicks", "scanner_clicks",
           "registrations", "introductions", "hires_elsewhere", "hires", "referrals")
MONTHLY = ("applications", "reapplications", "rejections", "invitations", "human_clicks",
           "registrations", "hires")
PER_SOURCE = ("applications", "rejections", "reapplications", "registrations", "hires")
# fact kind -> the figure it adds one to
FIGURE = {"application": "applications", "reapplication": "reapplications",
          "rejection": "rejections", "invitation": "invitations", "human_click": "human_clicks",
          "scanner_click": "scanner_clicks", "registration": "registrations",
          "introduction": "introductions", "hired_elsewhere": "hires_elsewhere", "hire": "hires",
          "referral": "referrals"}
REFERRAL_VIAS = ("slot", "referral")


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def compute(store: Store, config: Config, start: date | None, end: date | None, *,
            now: datetime | None = None, clock: Clock | None = None) -> dict[str, Any]:
    """The report for `start` … `end` (inclusive local dates; None: all time). `now` (else the
    clock's) only decides which hires are old enough for a retention figure."""
    period = Period(start, end, config.zone)
    today = period.day(now or (clock or SystemClock()).now())
    every = list(facts(store, period))
    left_on = _left_on(every)
    inside = [f for f in every if period.holds(f.day)]
    totals: Counter[str] = Counter(FIGURE[f.kind] for f in inside if f.kind in FIGURE)
    totals["applications"] += totals["reapplications"]  # a re-application is an application
    rejected = {f.candidate_id for f in inside if f.kind == "rejection"}
    registered = {f.candidate_id for f in inside if f.kind == "registration"}
    totals["registrations"] = len(registered)
    hires = [f for f in inside if f.kind == "hire"]
    report: dict[str, Any] = {
        "from": start.isoformat() if start else None, "to": end.isoformat() if end else None,
        "zone": config.rules.timezone, "today": today.isoformat(),
        **{k: totals[k] for k in COUNTED}, "reapplications": totals["reapplications"],
        "rejected_candidates": len(rejected),
    }
    report["conversion"] = {
        "invited_per_rejection": ratio(totals["invitations"], totals["rejections"]),
        "human_click_per_invitation": ratio(totals["human_clicks"], totals["invitations"]),
        "registration_per_invitation": ratio(totals["registrations"], totals["invitations"]),
        "introduction_per_registration": ratio(totals["introductions"], totals["registrations"]),
        "hired_elsewhere_per_introduction": ratio(totals["hires_elsewhere"],
                                                  totals["introductions"]),
    }
    report["reapplication_rate"] = ratio(totals["reapplications"], len(rejected))
    slots = slot_figures(store, period)
    report.update(slots)
    report["registrations_per_free_slot"] = config.career_relay.registrations_per_free_slot
    report.update(_money(config, hires, slots["slots_redeemed"]))
    report["hires_by_via"] = dict(sorted(Counter(_via(f) for f in hires).items()))
    report["referral_hire_rate"] = ratio(sum(_via(f) in REFERRAL_VIAS for f in hires), len(hires))
    report.update(retentions(((f.day, left_on.get(f.candidate_id)) for f in hires), today))
    report["by_source"] = _by_source(inside, left_on, today)
    report["by_month"] = _by_month(inside, period)
    return report


def _via(fact: Fact) -> str:
    return str(fact.data.get("via") or "direct")


def _left_on(every: list[Fact]) -> dict[str, date]:
    """When each candidate left (the last `left` recorded wins)."""
    return {f.candidate_id: f.day for f in every if f.kind == "left"}


def _money(config: Config, hires: list[Fact], redeemed: int) -> dict[str, Any]:
    usual = config.kpi.usual_cost_per_hire_yen
    paid = sum(1 for f in hires if _via(f) != "slot")
    per_hire = round(paid * usual / len(hires)) if hires else None
    return {"agency_fee_yen": config.kpi.agency_fee_yen, "usual_cost_per_hire_yen": usual,
            "cost_avoided_yen": redeemed * config.kpi.agency_fee_yen,
            "cost_per_hire_yen": per_hire,
            "cost_per_hire_change_yen": per_hire - usual if per_hire is not None else None}


def _by_source(inside: list[Fact], left_on: dict[str, date], today: date) -> dict[str, Any]:
    grouped: dict[str, list[Fact]] = defaultdict(list)
    for f in inside:
        if FIGURE.get(f.kind) in PER_SOURCE:
            grouped[f.source].append(f)
    out: dict[str, Any] = {}
    for source, found in sorted(grouped.items()):
        counts = Counter(FIGURE[f.kind] for f in found)
        counts["applications"] += counts["reapplications"]
        counts["registrations"] = len({f.candidate_id for f in found
                                       if f.kind == "registration"})
        hires = [(f.day, left_on.get(f.candidate_id)) for f in found if f.kind == "hire"]
        out[source] = {**{k: counts[k] for k in PER_SOURCE}, **retentions(hires, today)}
    return out


def _by_month(inside: list[Fact], period: Period) -> list[dict[str, Any]]:
    days = [f.day for f in inside]
    if not days and (period.start is None or period.end is None):
        return []
    rows = {m: Counter[str]() for m in months_between(period.start or min(days),
                                                        period.end or max(days))}
    registered: dict[str, set[str]] = defaultdict(set)
    for f in inside:
        figure, month = FIGURE.get(f.kind), month_of(f.day)
        if month not in rows:
            continue
        if f.kind == "registration":
            registered[month].add(f.candidate_id)
        elif figure in MONTHLY:
            rows[month][figure] += 1
    out = []
    for month, counts in rows.items():
        counts["registrations"] = len(registered[month])
        counts["applications"] += counts["reapplications"]
        out.append({"month": month, **{k: counts[k] for k in MONTHLY}})
    return out
