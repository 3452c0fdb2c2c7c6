"""`candidate show`'s card: one candidate as labelled lines a person reads.

The same record `candidate show --json` prints, made readable: lists joined, yes/no for
booleans, "—" for what is not known, every time in the configured time zone (`rules.timezone`),
the timeline one line per event. Ids of other records (`…_id`) are left to `--json`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from mailflow.cli.columns import pad, printable
from mailflow.clock import parse_iso

NONE = "—"
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
FIELDS = (("name", "name"), ("emails", "emails"), ("phones", "phones"), ("status", "status"),
          ("reapplied", "re-applied"), ("source", "source"), ("sources", "channels"),
          ("desired_role", "desired role"), ("skills", "skills"),
          ("qualifications", "qualifications"), ("career", "career"), ("tags", "tags"),
          ("rescout_ok", "rescout ok"), ("relay_status", "Career Relay"),
          ("relay_ref", "referral code"), ("created_at", "created"), ("updated_at", "updated"))
EVENTS = {"candidate_created": "added to the pool", "applied": "applied",
          "reapplied": "applied again", "merged": "merged", "stage": "selection stage",
          "rejected": "rejected", "invited": "invited to Career Relay",
          "clicked": "opened the Career Relay link", "replied": "replied",
          "undeliverable": "an address was refused", "imported": "imported",
          "consent": "consent", "consent_withdrawn": "consent withdrawn (unsubscribe)",
          "followup": "follow-up", "followups_stopped": "follow-ups stopped",
          "relay_registered": "registered at Career Relay",
          "relay_introduced": "introduced by Career Relay",
          "relay_hired": "hired elsewhere through Career Relay",
          "relay_withdrawn": "withdrew from Career Relay",
          "tags": "tags by rules/tags.toml", "tag": "tag by HR",
          "reapply_intent": "re-application intent",
          "profile": "skills and career read", "corrected": "corrected by HR",
          "document_unreadable": "a document could not be read"}
LABEL_WIDTH = 16


def when(text: object, zone: ZoneInfo) -> str:
    """A stored time in the configured zone (`2026-01-15 19:00 JST`); a date stays a date."""
    if not isinstance(text, str) or not _TIME.match(text):
        return readable(text, zone)
    try:
        at = parse_iso(text).astimezone(zone)
    except ValueError:
        return text
    return f"{at:%Y-%m-%d %H:%M} {at.tzname()}"


def readable(value: object, zone: ZoneInfo) -> str:
    """A value as text: "" when there is nothing, yes/no, lists joined, times in the zone."""
    if value is None or value == "" or value == [] or value == {}:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return when(value, zone) if _TIME.match(value) else value
    if isinstance(value, datetime):
        return when(value.isoformat(), zone)
    if isinstance(value, list | tuple):
        return ", ".join(text for text in (readable(v, zone) for v in value) if text)
    if isinstance(value, Mapping):
        return details(value, zone)
    return str(value)


def details(data: Mapping[str, Any], zone: ZoneInfo, skip: tuple[str, ...] = ()) -> str:
    """`key value` pairs with something in them, ids of other records left out."""
    parts = []
    for key, value in data.items():
        text = readable(value, zone)
        if text and key not in skip and key != "id" and not key.endswith("_id"):
            parts.append(f"{key.replace('_', ' ')} {text}")
    return ", ".join(parts)


def _line(label: str, text: str) -> str:
    return f"  {pad(label, LABEL_WIDTH)}{printable(text) or NONE}"


def _fields(record: Mapping[str, Any], zone: ZoneInfo) -> list[str]:
    lines = []
    for key, label in FIELDS:
        value = record.get(key)
        if key == "rescout_ok" and value is None:
            text = "not said"
        elif key == "relay_status":
            text = str(value or "").replace("_", " ")
        else:
            text = readable(value, zone)
        lines.append(_line(label, text))
    return lines


def _sections(record: Mapping[str, Any], zone: ZoneInfo) -> list[str]:
    lines: list[str] = []
    apps = record.get("applications") or []
    if apps:
        lines.append("applications")
        lines += [f"  {when(a.get('applied_at'), zone) or NONE}  {a.get('position') or NONE}"
                  + (f"  via {a['source']}" if a.get("source") else "") for a in apps]
    stages = record.get("stages") or []
    if stages:
        lines.append("selection stages")
        lines += [f"  {when(s.get('at'), zone) or NONE}  {s.get('stage') or NONE}"
                  + (f"  ({d})" if (d := details(s, zone, ("at", "stage"))) else "")
                  for s in stages]
    rejection = record.get("rejection")
    if rejection:
        lines.append("rejection")
        lines.append(f"  {when(rejection.get('at'), zone) or NONE}  "
                     f"{details(rejection, zone, ('at',)) or NONE}")
    consents = record.get("consents") or {}
    if consents:
        lines.append("consents")
        lines += [_line(purpose, f"{entry.get('state')} {when(entry.get('at'), zone)}"
                        + (f" ({entry['how']})" if entry.get("how") else ""))
                  for purpose, entry in consents.items()]
    intent = record.get("reapply_intent")
    if intent:
        wish = "wishes to hear about openings" if intent.get("wish") else "does not wish to"
        lines.append(_line("re-application", f"{wish} ({when(intent.get('at'), zone)}, "
                                             f"{intent.get('how')})"))
    if record.get("rule_tags"):
        lines.append(_line("tags by rules", readable(record["rule_tags"], zone)))
    hires = record.get("hires") or []
    if hires:
        lines.append("hires")
        lines += [f"  {str(h.get('on'))[:10]}  {h.get('position') or NONE}  via {h.get('via')}"
                  + (f"  (free slot, ledger entry {h['slot_seq']})" if h.get("slot_seq") else "")
                  + (f"  left {h['left_on']}" if h.get("left_on") else "") for h in hires]
    merges = record.get("merges") or []
    if merges:
        lines.append("merged")
        lines += [f"  {when(m.get('at'), zone)}  {m.get('reason') or NONE}" for m in merges]
    return lines


def event_line(event: Mapping[str, Any], zone: ZoneInfo) -> str:
    kind = str(event.get("type", ""))
    label = EVENTS.get(kind, kind.replace("_", " "))
    more = details(event, zone, ("type", "at"))
    return f"  {when(event.get('at'), zone)}  {label}" + (f": {more}" if more else "")


def card(record: Mapping[str, Any], zone: ZoneInfo) -> list[str]:
    """The lines of the card for the record `candidate show --json` prints."""
    lines = [f"candidate {record['id']}", *_fields(record, zone), *_sections(record, zone),
             "timeline"]
    timeline = record.get("timeline") or []
    lines += [event_line(e, zone) for e in timeline] or [f"  {NONE}"]
    return lines
