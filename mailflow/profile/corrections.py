"""HR's corrections: `mailflow candidate set ID|EMAIL FIELD VALUE` (the control channel's
`candidate.set`) and `#mailflow skills=… qualifications=… career=… desired_role=…` lines in the
company's mail. HR's value replaces what was there and is marked source "hr" in the provenance,
so what later mails, résumés and imports say no longer changes that field. Each correction is an
event `corrected` on the timeline; a command's is also in the audit log (action "correct", the
field's name, never the value).

Lists (skills, qualifications, phone) are comma-separated (`,` `、` `;`); skills and
qualifications take their canonical names from `skills.toml` where it knows them.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from typing import Any

from mailflow.clock import Clock
from mailflow.errors import MailflowError, UsageError
from mailflow.mail.parse.headers import one_line
from mailflow.mail.people import normalise_name, normalise_phone
from mailflow.pool import audit
from mailflow.pool.records import Candidate
from mailflow.pool.talent import TalentPool
from mailflow.profile.dictionary import SkillDictionary
from mailflow.profile.provenance import HR, LIST_FIELDS, set_by_hr
from mailflow.store.base import Store

FIELDS = ("skills", "qualifications", "career", "desired_role", "name", "phone", "source")
LINE_FIELDS = ("skills", "qualifications", "career", "desired_role")  # `#mailflow` lines
MAX_CHARS = 2000
_SPLIT = re.compile(r"[,、，;；]")


def parse_value(field: str, value: str, dictionary: SkillDictionary | None) -> list[str]:
    """The values HR gave for `field`, validated (UsageError naming what is wrong)."""
    if field not in FIELDS:
        raise UsageError(f"field {field!r}: expected one of {', '.join(FIELDS)}")
    text = one_line(unicodedata.normalize("NFKC", value)).strip()
    if len(text) > MAX_CHARS:
        raise UsageError(f"{field}: longer than {MAX_CHARS} characters")
    if field in (*LIST_FIELDS, "phone"):
        items = list(dict.fromkeys(v.strip() for v in _SPLIT.split(text) if v.strip()))
    else:
        items = [text] if text else []
    if field in LIST_FIELDS and dictionary is not None:
        items = list(dict.fromkeys(
            (term.name if (term := dictionary.canonical(v)) else v) for v in items))
    if field == "phone":
        phones = [normalise_phone(v) for v in items]
        bad = [v for v, p in zip(items, phones, strict=True) if p is None]
        if bad:
            raise UsageError(f"phone: not a Japanese phone number: {bad[0]!r}")
        items = [p for p in phones if p]
    if field in ("name", "source") and not items:
        raise UsageError(f"{field}: an empty value; give the {field}")
    return items


def apply_hr(pool: TalentPool, candidate: Candidate, field: str, values: list[str],
             said: str, by: str) -> None:
    """Set the field to HR's values (call it in the caller's transaction)."""
    at = pool.now()
    if field in ("name", "phone", "source"):
        if field == "name":
            candidate["name"], candidate["name_normalized"] = values[0], normalise_name(values[0])
        elif field == "phone":
            candidate["phones"] = values
        else:
            candidate["source"] = values[0]
            if values[0] not in candidate["sources"]:
                candidate["sources"].append(values[0])
        trail = [p for p in candidate.get("provenance", []) if p["field"] != field]
        candidate["provenance"] = trail + [
            {"field": field, "value": v, "source": HR, "matched": said, "years": None, "at": at}
            for v in values]
    else:
        set_by_hr(candidate, field, values, said, at)
    pool.save(candidate)
    pool.event(candidate["id"], "corrected", field=field, value=values, by=by)


def set_field(store: Store, clock: Clock, args: dict[str, Any],
              dictionary: SkillDictionary | None = None,
              lane: threading.RLock | None = None) -> dict[str, Any]:
    """`candidate`, `field`, `value`, `actor`; under the daemon's writer `lane` when there is
    one."""
    field, value = str(args["field"]), str(args["value"])
    actor = str(args.get("actor") or "cli:unknown")
    values = parse_value(field, value, dictionary)
    pool = TalentPool(store, clock)
    with lane or threading.RLock(), store.transaction():
        candidate = pool.lookup(str(args["candidate"]))
        if candidate is None:
            raise MailflowError(f"no candidate {args['candidate']}")
        apply_hr(pool, candidate, field, values, value, actor)
        audit.record(store, clock, actor, "correct", candidate["id"], {"field": field})
    shown: list[str] | str = values if field in (*LIST_FIELDS, "phone") else (
        values[0] if values else "")
    return {"candidate_id": candidate["id"], "field": field, "value": shown}


def line_corrections(fields: dict[str, str],
                     dictionary: SkillDictionary | None) -> list[tuple[str, list[str], str]]:
    """The profile fields a `#mailflow` line sets, validated: (field, values, as written); a
    value that does not validate is left out."""
    out = []
    for field in LINE_FIELDS:
        if field in fields:
            try:
                out.append((field, parse_value(field, fields[field], dictionary),
                            fields[field]))
            except UsageError:
                continue
    return out
