"""The network commands' work: publish, list, stage moves, status — the pure decisions
(`entries`, `stages`) carried out on the company's store and the network's scope.

Publishing, in an order a crash at any point converges from (the next publish finishes it): new
entry links are recorded in the company's store first (through the daemon when it runs), then
the pool is changed in one transaction, then the links of withdrawn entries are dropped. An
entry in the pool always has its link, so the publisher can act on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import tzinfo
from typing import Any

from mailflow.clock import Clock, iso
from mailflow.network.entries import Publication, listed, plan_publish
from mailflow.network.scope import NetworkPool
from mailflow.network.stages import INTRODUCED, Move, check, introduced_to, progress
from mailflow.pool import audit
from mailflow.pool.records import Candidate
from mailflow.store import Store

Doc = dict[str, Any]
Links = Callable[[dict[str, str], list[str], dict[str, int]], Any]


def local_links(store: Store) -> dict[str, str]:
    """The company's own map: entry id -> candidate id."""
    return {str(d["entry"]): str(d["candidate_id"]) for d in store.scan("network_links")}


def record_links(store: Store, clock: Clock, add: dict[str, str], drop: Iterable[str],
                 actor: str, summary: dict[str, int]) -> int:
    """Change the company's map (the writer's side of `Links`) and account for the publish in
    the audit log (its counts), in one transaction. How many links changed."""
    at = iso(clock.now())
    drop = list(drop)
    with store.transaction():
        for entry, candidate_id in sorted(add.items()):
            store.put("network_links", entry, {"entry": entry, "candidate_id": candidate_id,
                                               "linked_at": at})
        dropped = sum(store.delete("network_links", entry) for entry in drop)
        audit.record(store, clock, actor, "network-publish", "", summary)
    return len(add) + dropped


def publish(pool: NetworkPool, candidates: Iterable[Candidate], links: dict[str, str],
            notified: Iterable[str], zone: tzinfo, now: str, change_links: Links) -> Publication:
    """Make the pool hold exactly this company's consented candidates (idempotent)."""
    plan = plan_publish(candidates, links, pool.entries_of(pool.company), pool.company,
                        notified, zone, now)
    if plan.links:
        change_links(plan.links, [], plan.summary())
    with pool.store.transaction():
        pool.join(now)
        for doc in plan.upserts:
            pool.store.put("network_entries", doc["entry"], doc)
        for entry in plan.removals:
            pool.store.delete("network_entries", entry)
    if plan.dropped_links:
        change_links({}, plan.dropped_links, plan.summary())
    return plan


def listing(pool: NetworkPool) -> Iterable[Doc]:
    return (listed(doc) for doc in pool.others())


def move(pool: NetworkPool, entry: str, stage: str, to: str | None, now: str) -> Doc:
    """Make one stage move for this company: the event (`appended`: false when it had been
    made already)."""
    with pool.store.transaction():
        pool.join(now)
        publisher, live = pool.publisher(entry)
        events = pool.events(entry)
        resolve = to is None and stage == INTRODUCED and pool.company == publisher
        target = introduced_to(entry, events) if resolve else to or pool.company
        event = check(Move(entry, stage, pool.company, target), publisher, live, events,
                      pool.members(), now)
        if event is None:
            done = next(e for e in events if e["stage"] == stage and e["to"] == target)
            return {**done, "appended": False}
        pool.store.append("network_stages", event)
    return {**event, "appended": True}


def status(pool: NetworkPool, links: dict[str, str]) -> list[Doc]:
    """Each entry's stage per company, for the entries this company takes part in; its own
    entries name its own candidate (`candidate_id`, from its own store), no one else's do."""
    mine = pool.entries_of(pool.company)
    events = pool.events()
    live = {entry: pool.entry(entry) is not None for entry in {str(e["entry"]) for e in events}}
    rows = progress(events, pool.company, live)
    seen = {row["entry"] for row in rows}
    rows += [{"entry": entry, "publisher": pool.company, "company": None, "stage": None,
              "at": {}, "recommended_by": [], "live": True}
             for entry in sorted(mine) if entry not in seen]
    for row in rows:
        if row["publisher"] == pool.company:
            row["candidate_id"] = links.get(row["entry"])
    return rows
