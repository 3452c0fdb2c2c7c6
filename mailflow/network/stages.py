"""An entry's way through the network, pure: 推薦 (recommended to a company), 紹介 (introduced
to it), 採用 (hired by it), each an event appended to the network's log, and who may move it.

Who may move which stage (`check`; anything else is refused, naming why):
- 推薦 `recommend ENTRY --to COMPANY`: any member, for a published entry, to a member that is not
  its publisher (the publisher offering its candidate, the company asking for it, or the staffing
  company between them).
- 紹介 `introduce ENTRY [--to COMPANY]`: the publisher only (it alone knows who the candidate
  is), once the entry was recommended to that company and the candidate agreed. The identity goes
  to the other company outside the pool (through the candidate or the agency); the event says
  only that it happened.
- 採用 `hire ENTRY`: the company the entry was introduced to, for itself; also after the entry
  left the pool (the hire happened outside it).

The same move made twice is one event (`check` answers None: nothing to append). An entry's
stage per company is the furthest one reached (`progress`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mailflow.errors import MailflowError

RECOMMENDED, INTRODUCED, HIRED = "推薦", "紹介", "採用"
STAGES = (RECOMMENDED, INTRODUCED, HIRED)
BEFORE = {INTRODUCED: RECOMMENDED, HIRED: INTRODUCED}

Doc = dict[str, Any]


class Refused(MailflowError):
    """A stage move the company is not entitled to, or one out of order (exit 1)."""


@dataclass(frozen=True)
class Move:
    entry: str
    stage: str
    by: str  # the company making the move
    to: str  # the company the entry goes to


def _reached(events: Iterable[Mapping[str, Any]], stage: str, to: str) -> bool:
    return any(e.get("stage") == stage and e.get("to") == to for e in events)


def check(move: Move, publisher: str, live: bool, events: Sequence[Mapping[str, Any]],
          members: Iterable[str], at: str) -> Doc | None:
    """The event to append for `move`; None when it was made already; `Refused` when the
    company may not make it. `publisher`: who published the entry; `live`: still in the pool."""
    members = set(members)
    if move.stage not in STAGES:
        raise Refused(f"unknown stage {move.stage!r}; stages: {', '.join(STAGES)}")
    if move.to not in members:
        raise Refused(f"{move.to!r} is not a member of the network; members: "
                      f"{', '.join(sorted(members)) or '(none)'}")
    if move.to == publisher:
        raise Refused(f"entry {move.entry} is {publisher}'s own: it goes to another company")
    if move.stage == INTRODUCED and move.by != publisher:
        raise Refused(f"only {publisher}, who published entry {move.entry}, can introduce it")
    if move.stage == HIRED and move.by != move.to:
        raise Refused(f"only {move.to} can record its own hire of entry {move.entry}")
    if move.stage != HIRED and not live:
        raise Refused(f"entry {move.entry} is no longer in the pool (withdrawn)")
    if _reached(events, move.stage, move.to):
        return None
    before = BEFORE.get(move.stage)
    if before is not None and not _reached(events, before, move.to):
        raise Refused(f"entry {move.entry} was not {_PAST[before]} {move.to} yet: {before} "
                      f"comes before {move.stage}")
    return {"entry": move.entry, "stage": move.stage, "by": move.by, "to": move.to,
            "publisher": publisher, "at": at}


_PAST = {RECOMMENDED: "recommended to", INTRODUCED: "introduced to"}


def introduced_to(entry: str, events: Iterable[Mapping[str, Any]]) -> str:
    """The one company entry `entry` was recommended to and not yet introduced to, for
    `introduce` without `--to`; `Refused` when there is none or more than one."""
    events = list(events)
    waiting = sorted({str(e["to"]) for e in events if e.get("stage") == RECOMMENDED}
                     - {str(e["to"]) for e in events if e.get("stage") == INTRODUCED})
    if len(waiting) != 1:
        said = f"several companies ({', '.join(waiting)})" if waiting else "no company"
        raise Refused(f"entry {entry} waits for an introduction to {said}: give --to COMPANY")
    return waiting[0]


def progress(events: Iterable[Mapping[str, Any]], me: str,
             live: Mapping[str, bool]) -> list[Doc]:
    """One row per entry and company it was recommended to, that `me` takes part in (published
    it, recommended it, or is the company it goes to): the furthest stage and when each stage
    was reached. `live`: whether each entry is still in the pool."""
    rows: dict[tuple[str, str], Doc] = {}
    for event in events:
        key = (str(event["entry"]), str(event["to"]))
        item = rows.setdefault(key, {"entry": key[0], "publisher": event["publisher"],
                                     "company": key[1], "stage": None, "at": {},
                                     "recommended_by": [], "live": live.get(key[0], False)})
        item["at"].setdefault(event["stage"], event["at"])
        if event["stage"] == RECOMMENDED and event["by"] not in item["recommended_by"]:
            item["recommended_by"].append(event["by"])
        if item["stage"] is None or STAGES.index(event["stage"]) > STAGES.index(item["stage"]):
            item["stage"] = event["stage"]
    return [item for item in rows.values()
            if me in (item["publisher"], item["company"], *item["recommended_by"])]
