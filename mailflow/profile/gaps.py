"""`mailflow pool check`: the records a data cleanup (導入ステップ①) should look at, each with the
candidate's id and the reason (pure, over the candidates).

A record is listed for missing contact (no email and no phone), missing source, missing role (no
desired role and no application naming a position), and as a suspected duplicate of another when
both have the same name (normalised, spaces and case ignored) and either the same birth date or a
phone in common. Duplicates are found by grouping, one pass over the pool.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from mailflow.pool.records import Candidate


@dataclass(frozen=True)
class Gap:
    candidate_id: str
    reason: str  # "no contact" | "no source" | "no role" | "duplicate"
    detail: str = ""
    other: str = ""  # the other record, for a duplicate

    def as_json(self) -> dict[str, str]:
        return {"id": self.candidate_id, "reason": self.reason, "detail": self.detail,
                "other": self.other}


def _own_gaps(candidate: Candidate) -> list[Gap]:
    gaps = []
    cid = candidate["id"]
    if not candidate["emails"] and not candidate["phones"]:
        gaps.append(Gap(cid, "no contact", "no email and no phone"))
    if not candidate["source"]:
        gaps.append(Gap(cid, "no source", "where the person came from is not known"))
    if not candidate["desired_role"] and not any(
            a.get("position") for a in candidate["applications"]):
        gaps.append(Gap(cid, "no role", "no desired role and no application names a position"))
    return gaps


def pool_gaps(candidates: Iterable[Candidate]) -> list[Gap]:
    """Every gap and suspected duplicate, by candidate in pool order."""
    gaps: list[Gap] = []
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for candidate in candidates:
        gaps += _own_gaps(candidate)
        name = candidate["name_normalized"].replace(" ", "").lower()  # 佐藤 花子 is 佐藤花子
        if not name:
            continue
        if candidate.get("birth_date"):
            groups["birth date", name, str(candidate.get("birth_date"))].append(candidate["id"])
        for phone in candidate["phones"]:
            groups["phone", name, phone].append(candidate["id"])
    seen: set[tuple[str, str]] = set()
    for (by, _name, _value), ids in groups.items():
        for index, cid in enumerate(ids):
            for other in ids[:index] + ids[index + 1:]:
                if (cid, other) not in seen:
                    seen.add((cid, other))
                    gaps.append(Gap(cid, "duplicate", f"same name and {by}", other))
    return gaps
