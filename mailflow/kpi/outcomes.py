"""Outcomes worth measuring: a hire (`candidate hire`) and the day a person hired left
(`candidate left`), the control channel's `candidate.hire` and `candidate.left`.

A hire `via` "slot" is paid for by a free referral slot: the slot is redeemed in the same store
transaction, its ledger entry names the hire (candidate id and hire date) and the hire keeps the
entry's number, so each slot says which hire it paid for. No slot available: nothing is recorded
(NothingToRedeem, exit 1). Both are in the audit log ("hire", "redeem", "left").
"""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

from mailflow.clock import Clock
from mailflow.errors import MailflowError, UsageError
from mailflow.pool import audit
from mailflow.pool.records import Candidate
from mailflow.pool.talent import HIRE_VIAS, TalentPool, current_hire
from mailflow.relay.ledger import ReferralLedger
from mailflow.store.base import Store


def _day(text: Any) -> str:
    try:
        return date.fromisoformat(str(text)).isoformat()
    except ValueError as exc:
        raise UsageError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


def _candidate(pool: TalentPool, ref: str) -> Candidate:
    found = pool.lookup(ref)
    if found is None:
        raise MailflowError(f"no candidate {ref}")
    return found


def hire(store: Store, clock: Clock, ledger: ReferralLedger,
         args: dict[str, Any]) -> dict[str, Any]:
    """`candidate`, `on`, `position` (optional), `via` (optional), `actor`."""
    on, via = _day(args["on"]), str(args.get("via") or "")
    if via and via not in HIRE_VIAS:
        raise UsageError(f"--via {via!r}: expected one of {', '.join(HIRE_VIAS)}")
    actor = str(args.get("actor") or "cli:unknown")
    pool = TalentPool(store, clock)
    with ledger.lane, store.transaction():
        candidate = _candidate(pool, str(args["candidate"]))
        if (open_hire := current_hire(candidate)) is not None:
            raise MailflowError(f"candidate {candidate['id']} is already hired (on "
                                f"{open_hire['on'][:10]}); record `candidate left` first")
        position = str(args.get("position") or "") or (
            candidate["applications"][-1]["position"] if candidate["applications"] else "")
        slot_seq = None
        if via == "slot":
            # no candidate id in the note: `ledger export --csv` goes to the partner without them
            note = f"hire on {on}" + (f" ({position})" if position else "")
            redeemed = ledger.redeem(note, candidate_id=candidate["id"], hired_on=on)
            slot_seq = int(redeemed["seq"])
            audit.record(store, clock, actor, "redeem", candidate["id"],
                         {"ledger_seq": slot_seq, "hired_on": on})
        record = pool.record_hire(candidate, on, position, via, slot_seq, "command")
        audit.record(store, clock, actor, "hire", candidate["id"],
                     {"on": on, "via": record["via"], "ledger_seq": slot_seq})
    return {"candidate_id": candidate["id"], **record,
            "slots_available": redeemed["slots_available"] if slot_seq else None}


def left(store: Store, clock: Clock, args: dict[str, Any],
         lane: threading.RLock | None = None) -> dict[str, Any]:
    """`candidate`, `on`, `actor`; under the daemon's writer `lane` when there is one."""
    on = _day(args["on"])
    actor = str(args.get("actor") or "cli:unknown")
    pool = TalentPool(store, clock)
    with lane or threading.RLock(), store.transaction():
        candidate = _candidate(pool, str(args["candidate"]))
        record = pool.record_left(candidate, on)
        audit.record(store, clock, actor, "left", candidate["id"],
                     {"on": on, "hired_on": record["on"][:10]})
    return {"candidate_id": candidate["id"], **record}
