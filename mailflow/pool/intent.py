"""The candidate's re-application intent (再応募意向): whether they wish to hear about future
openings, in their own word — a choice on the consent page, a reply saying 「希望する」 or
「希望しない」, or HR recording what the candidate told them. Kept as `reapply_intent` (wish, when,
how, evidence), apart from HR's own view `rescout_ok`; the latest word wins. Intent is not
consent: mail still goes only while consent for its purpose holds.
"""

from __future__ import annotations

from typing import Any

from mailflow.clock import Clock
from mailflow.errors import MailflowError
from mailflow.pool import audit
from mailflow.pool.records import Candidate, Intent
from mailflow.pool.talent import TalentPool
from mailflow.store.base import Store

PAGE = "consent page"
REPLY = "reply"
HR = "hr"
HOWS = (PAGE, REPLY, HR)


def record_intent(pool: TalentPool, candidate: Candidate, wish: bool, how: str,
                  evidence: str) -> Intent | None:
    """Record the wish (in the caller's transaction) with an event on the timeline; None when
    the candidate's recorded wish is already this one."""
    if how not in HOWS:
        raise ValueError(f"unknown channel {how!r}; known: {', '.join(HOWS)}")
    said = candidate.get("reapply_intent")
    if said is not None and said["wish"] == wish:
        return None
    intent: Intent = {"wish": wish, "at": pool.now(), "how": how, "evidence": evidence}
    candidate["reapply_intent"] = intent
    pool.save(candidate)
    pool.event(candidate["id"], "reapply_intent", wish=wish, how=how, evidence=evidence)
    return intent


def hr_intent(store: Store, clock: Clock, args: dict[str, Any]) -> dict[str, Any]:
    """HR records what the candidate told them (`candidate`: id or email, `wish` yes|no,
    `note`, `actor`); the control channel's `intent.record`, in the audit log."""
    actor = str(args.get("actor") or "cli:unknown")
    pool = TalentPool(store, clock)
    with store.transaction():
        candidate = pool.lookup(str(args["candidate"]))
        if candidate is None:
            raise MailflowError(f"no candidate {args['candidate']}")
        note = str(args.get("note") or "")
        done = record_intent(pool, candidate, args["wish"] == "yes", HR,
                             f"admin command by {actor}" + (f": {note}" if note else ""))
        if done is not None:
            audit.record(store, clock, actor, "intent", candidate["id"],
                         {"wish": done["wish"]})
    return {"candidate_id": candidate["id"], "changed": done is not None,
            "reapply_intent": candidate.get("reapply_intent")}
