"""What a company publishes to the network pool, pure: its candidates, its local entry map and
what the pool holds of it in; the plan that makes the pool match out.

Who is published: a candidate who explicitly granted the purpose `network` (`PURPOSE`; being
notified of it is not enough, as for the anonymised export: `anonymised.may_share`). A withdrawal,
an erasure (the candidate is gone) or a grant never given takes the entry out at the next
publish. What an entry holds: the anonymised export's fields (`anonymised.row`, the one
definition; its `id` becomes the entry's id) and nothing else, plus the publishing company's
name in the network and when it was published and last updated.

The entry id is random (`secrets.token_hex(16)`), made once per candidate and kept in the
company's own store (`network_links`: entry -> candidate id), so an entry stays the same entry
across publishes (its stage events keep pointing at it) while nothing in the pool leads back to
the candidate: the id is not derived from the candidate's id, and only the publisher holds the map.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from mailflow.pool.anonymised import may_share, row
from mailflow.pool.records import Candidate

PURPOSE = "network"

Doc = dict[str, Any]


def new_entry_id() -> str:
    return secrets.token_hex(16)


@dataclass
class Publication:
    """The changes that make the pool hold exactly this company's consented candidates."""

    links: dict[str, str] = field(default_factory=dict)  # new entry -> candidate id, kept locally
    dropped_links: list[str] = field(default_factory=list)  # local links that go
    upserts: list[Doc] = field(default_factory=list)  # entries written to the pool
    removals: list[str] = field(default_factory=list)  # this company's entries the pool drops
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    left_out: int = 0  # candidates without an explicit `network` grant

    def summary(self) -> dict[str, int]:
        return {"published": self.added, "updated": self.updated, "unchanged": self.unchanged,
                "withdrawn": len(self.removals), "left_out": self.left_out}


def fields_of(candidate: Candidate, zone: tzinfo) -> dict[str, Any]:
    """The anonymised export's fields of one candidate, without the export's own id."""
    fields: dict[str, Any] = dict(row(candidate, zone, ""))
    del fields["id"]
    return fields


def plan_publish(candidates: Iterable[Candidate], links: Mapping[str, str],
                 published: Mapping[str, Mapping[str, Any]], company: str,
                 notified: Iterable[str], zone: tzinfo, now: str,
                 new_id: Callable[[], str] = new_entry_id) -> Publication:
    """The plan for one publish. `links`: the company's entry -> candidate id; `published`: the
    pool's entries of this company, by entry id. Publishing twice in a row changes nothing."""
    notified = tuple(notified)
    plan = Publication()
    entry_of: dict[str, str] = {}
    for entry, candidate_id in sorted(links.items()):
        entry_of.setdefault(candidate_id, entry)
    kept: set[str] = set()
    for candidate in candidates:
        if not may_share(candidate, notified, PURPOSE).holds:
            plan.left_out += 1
            continue
        found = entry_of.get(candidate["id"])
        entry = found if found is not None else new_id()
        if found is None:
            while entry in links or entry in published or entry in plan.links:
                entry = new_id()
            plan.links[entry] = candidate["id"]
        kept.add(entry)
        fields = fields_of(candidate, zone)
        before = published.get(entry)
        if before is not None and before.get("fields") == fields:
            plan.unchanged += 1
            continue
        plan.upserts.append({"entry": entry, "company": company, "fields": fields,
                             "published_at": str(before["published_at"]) if before else now,
                             "updated_at": now})
        if before is None:
            plan.added += 1
        else:
            plan.updated += 1
    plan.dropped_links = sorted(e for e in links if e not in kept)
    plan.removals = sorted(e for e in published if e not in kept)
    return plan


def listed(entry: Mapping[str, Any]) -> Doc:
    """An entry as `network list` shows it: its id, publisher, times and the anonymised fields."""
    return {"entry": entry["entry"], "company": entry["company"],
            "published_at": entry["published_at"], "updated_at": entry["updated_at"],
            **dict(entry["fields"])}
