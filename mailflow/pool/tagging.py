"""Where tags are given: every write of a candidate record goes through `TaggingStore`, which
evaluates `rules/tags.toml` (`pool.tags`) on the record being written — so whatever changed a
fact (an application, a stage, a rejection, a consent page, a reply, an import, a Career Relay
callback, an admin command), the rule tags follow it in the same transaction, with a "tags"
event on the timeline naming what was added and removed. `hr_tag` is HR's own word on a tag
(`mailflow tag`), on the timeline and in the audit log.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

from mailflow.clock import Clock, iso
from mailflow.errors import MailflowError, UsageError
from mailflow.pool import audit
from mailflow.pool.records import Candidate, as_candidate
from mailflow.pool.tags import FILE, TagRules, change_by_hr, load_tags, retag
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import Config
from mailflow.store.base import Doc, Store

log = logging.getLogger("mailflow.pool")

TAG_LIMIT = 60
RETAG_PAGE = 1000  # candidates read at a time by retag_all


class TaggingStore:
    """A store whose candidate writes carry their rule tags; everything else passes through.
    `rules` may be replaced (a reload); the next write of each candidate uses the new ones."""

    def __init__(self, inner: Store, rules: TagRules, notified: frozenset[str],
                 clock: Clock) -> None:
        self.inner = inner
        self.read_only = inner.read_only
        self.rules = rules
        self.notified = notified
        self.clock = clock

    def put(self, kind: str, key: str, doc: Mapping[str, Any]) -> None:
        if kind != "candidates" or not isinstance(doc, dict):
            self.inner.put(kind, key, doc)
            return
        with self.inner.transaction():
            done = retag(as_candidate(doc), self.rules, self.notified)
            if done.added or done.removed:
                self.inner.append("events", {
                    "candidate_id": key, "type": "tags", "at": iso(self.clock.now()),
                    "data": {"added": list(done.added), "removed": list(done.removed),
                             "by": "tags.toml"}})
            self.inner.put(kind, key, doc)

    def retag_all(self) -> int:
        """Evaluate the rules on every candidate (after the rules changed); how many changed."""
        changed, after = 0, None
        while True:  # a page at a time: memory bounded by a page, not the pool
            page = list(self.inner.scan("candidates", after, RETAG_PAGE))
            for doc in page:
                before = (list(doc.get("tags") or []), list(doc.get("rule_tags") or []))
                if before != _after(doc, self.rules, self.notified):
                    self.put("candidates", str(doc["id"]), doc)
                    changed += 1
            if len(page) < RETAG_PAGE:
                return changed
            after = str(page[-1]["id"])

    # -- the rest of the contract, unchanged -----------------------------------------------------

    def transaction(self) -> AbstractContextManager[None]:
        return self.inner.transaction()

    def get(self, kind: str, key: str) -> Doc | None:
        return self.inner.get(kind, key)

    def delete(self, kind: str, key: str) -> bool:
        return self.inner.delete(kind, key)

    def find(self, kind: str, field: str, value: str) -> list[Doc]:
        return self.inner.find(kind, field, value)

    def below(self, kind: str, field: str, bound: str, limit: int = 1000) -> list[Doc]:
        return self.inner.below(kind, field, bound, limit)

    def scan(self, kind: str, after: str | None = None, limit: int | None = None) -> Iterator[Doc]:
        return self.inner.scan(kind, after, limit)

    def append(self, kind: str, doc: Mapping[str, Any]) -> int:
        return self.inner.append(kind, doc)

    def log(self, kind: str, after: int = 0) -> Iterator[tuple[int, Doc]]:
        return self.inner.log(kind, after)

    def count(self, kind: str) -> int:
        return self.inner.count(kind)

    def find_keys(self, kind: str, field: str, value: str) -> list[str]:
        return self.inner.find_keys(kind, field, value)

    def redact(self, kind: str, seq: int, doc: Mapping[str, Any]) -> None:
        self.inner.redact(kind, seq, doc)

    def scrub(self) -> bool:
        return self.inner.scrub()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        """Whatever else the engine offers (what a later contract adds), as the engine has it."""
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def _digest(config: Config) -> str:
    """What the rule tags depend on besides the candidate: the file, the notified purposes."""
    path = config.rules_dir / FILE
    text = path.read_bytes() if path.exists() else b""
    notified = ",".join(sorted(config.privacy.notified_purposes)).encode()
    return hashlib.sha256(text + b"\0" + notified).hexdigest()


def tagging_store(inner: Store, config: Config, clock: Clock) -> TaggingStore:
    """The daemon's store with the rules of the config's `tags.toml` (a broken file raises,
    every problem positioned); the pool re-tagged when they changed since the last start."""
    rules = load_tags(config.rules_dir, config.privacy.purposes)
    tagging = TaggingStore(inner, rules, frozenset(config.privacy.notified_purposes), clock)
    if not inner.read_only:
        _retag_if_changed(tagging, config)
    return tagging


def reload_tags(tagging: TaggingStore, config: Config) -> None:
    """The config's `tags.toml` again (raises, keeping the old rules, on a problem)."""
    tagging.rules = load_tags(config.rules_dir, config.privacy.purposes)
    tagging.notified = frozenset(config.privacy.notified_purposes)
    _retag_if_changed(tagging, config)


def _retag_if_changed(tagging: TaggingStore, config: Config) -> None:
    digest = _digest(config)
    seen = tagging.get("settings", "tag_rules")
    if seen is not None and seen.get("digest") == digest:
        return
    with tagging.transaction():
        changed = tagging.retag_all()
        tagging.put("settings", "tag_rules", {"digest": digest, "at": iso(tagging.clock.now())})
    log.info("tag rules changed: %d candidate(s) re-tagged", changed)


def _after(doc: Doc, rules: TagRules, notified: frozenset[str]) -> tuple[list[str], list[str]]:
    trial = as_candidate({**doc, "tags": list(doc.get("tags") or []),
                          "rule_tags": list(doc.get("rule_tags") or [])})
    retag(trial, rules, notified)
    return list(trial["tags"]), list(trial.get("rule_tags") or [])


def valid_tag(tag: str) -> str:
    """A tag HR may give: one line of printable text, at most TAG_LIMIT characters."""
    tag = tag.strip()
    if not tag or len(tag) > TAG_LIMIT or not tag.isprintable():
        raise UsageError(f"tag {tag!r}: expected 1 to {TAG_LIMIT} printable characters")
    return tag


def hr_tag(store: Store, clock: Clock, args: dict[str, Any]) -> dict[str, Any]:
    """HR adds or removes a tag (`candidate`: id or email, `tag`, `action` add|remove, `actor`);
    the control channel's `tag.change`. The candidate's effective tags afterwards."""
    tag, add = valid_tag(str(args["tag"])), args["action"] == "add"
    actor = str(args.get("actor") or "cli:unknown")
    pool = TalentPool(store, clock)
    with store.transaction():
        candidate: Candidate | None = pool.lookup(str(args["candidate"]))
        if candidate is None:
            raise MailflowError(f"no candidate {args['candidate']}")
        changed = change_by_hr(candidate, tag, add)
        if changed:
            pool.save(candidate)
            pool.event(candidate["id"], "tag", tag=tag, action=args["action"], by=actor)
            audit.record(store, clock, actor, "tag", candidate["id"],
                         {"tag": tag, "action": args["action"]})
    return {"candidate_id": candidate["id"], "tag": tag, "action": args["action"],
            "changed": changed, "tags": list(candidate["tags"])}
