"""Profile values into the candidate's record, each with its provenance.

`skills` and `qualifications` stay lists of canonical names (what other parts read); every value
found also adds a `Provenance` entry (field, value, source, matched text, years, when), once per
field, value and source. HR's word wins: a field HR set (an entry with source "hr") is no longer
changed by what mails, résumés or imports say. `career` is only filled while empty, and so is
`desired_role`, except that a stated 希望職種 replaces the default taken from the position applied
for; the first source that states one keeps it. `by_value` is the `candidate show --json` view:
each value with its provenance.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mailflow.pool.records import Candidate, Provenance
from mailflow.profile.extract import Found

LIST_FIELDS = ("skills", "qualifications")
TEXT_FIELDS = ("career", "desired_role")
HR = "hr"


def hr_owns(candidate: Candidate, field: str) -> bool:
    return any(p["field"] == field and p["source"] == HR
               for p in candidate.get("provenance", []))


def _open(candidate: Candidate, field: str) -> bool:
    """Whether a text field may take a value found: it is empty, or it is the desired role
    defaulted from the position applied for (no source stated it)."""
    value = candidate[field]  # type: ignore[literal-required]
    return not value or (field == "desired_role" and not any(
        p["field"] == field and p["value"] == value for p in candidate.get("provenance", [])))


def entry(found: Found, source: str, at: str) -> Provenance:
    record: Provenance = {"field": found.field, "value": found.value, "source": source,
                          "matched": found.matched, "years": found.years, "at": at}
    if found.score is not None:
        record["score"] = found.score
    return record


def add_found(candidate: Candidate, found: Iterable[Found], source: str, at: str) -> list[str]:
    """Record what `source` says; returns the fields that changed (none when HR owns them)."""
    trail = candidate.setdefault("provenance", [])
    known = {(p["field"], p["value"], p["source"]) for p in trail}
    changed: list[str] = []
    for item in found:
        if hr_owns(candidate, item.field):
            continue
        if item.field in LIST_FIELDS:
            values: list[str] = candidate[item.field]  # type: ignore[literal-required]
            if item.value in values and (item.field, item.value, source) in known:
                continue
            if item.value not in values:
                values.append(item.value)
        elif item.field in TEXT_FIELDS:
            if not _open(candidate, item.field):
                continue
            candidate[item.field] = item.value  # type: ignore[literal-required]
        else:
            continue
        trail.append(entry(item, source, at))
        known.add((item.field, item.value, source))
        if item.field not in changed:
            changed.append(item.field)
    return changed


def set_by_hr(candidate: Candidate, field: str, values: list[str], matched: str,
              at: str) -> None:
    """HR's value for a profile field: it replaces what was there, and its provenance."""
    if field in LIST_FIELDS:
        candidate[field] = list(dict.fromkeys(values))  # type: ignore[literal-required]
    else:
        candidate[field] = values[0] if values else ""  # type: ignore[literal-required]
    trail = [p for p in candidate.get("provenance", []) if p["field"] != field]
    trail += [{"field": field, "value": value, "source": HR, "matched": matched, "years": None,
               "at": at} for value in dict.fromkeys(values)]
    candidate["provenance"] = trail


def by_value(candidate: Candidate) -> dict[str, Any]:
    """Each profile value with where it came from: `{"skills": [{"value", "years",
    "provenance": [...]}], …, "career": {"value", "provenance"}}`."""
    trail = candidate.get("provenance", [])
    view: dict[str, Any] = {}
    for field in LIST_FIELDS:
        items = []
        for value in candidate.get(field) or []:  # type: ignore[attr-defined]
            said = [p for p in trail if p["field"] == field and p["value"] == value]
            years = max((p["years"] for p in said if p["years"] is not None), default=None)
            items.append({"value": value, "years": years, "provenance": said})
        view[field] = items
    for field in TEXT_FIELDS:
        value = candidate.get(field) or ""
        view[field] = {"value": value, "provenance": [
            p for p in trail if p["field"] == field and p["value"] == value]}
    return view
