"""Openings in the store (kind "openings"), ranked when they change, HR told once per change.

Where openings come from and how the two meet: `rules/openings.toml` and `mailflow opening add`.
Both live in the store, keyed by id (the file's own ids; `op-…` for those added by command).
`sync` — at the daemon's start, at each reload, and before a write command run without a daemon —
brings the file's openings in: a new one is added, one whose content changed gets a new revision
(and is open again unless the file says `open = false`), one taken out of the file is closed; one
unchanged is left as it is, so `opening close` on a file's opening holds until its entry changes.

A new revision of an open opening is ranked at once (`ranking.py`, with the stored weights) and,
in the same store transaction, the shortlist goes to HR through the outbox (template
`opening_shortlist.txt.j2`), `opening_matched` is recorded on the timeline of each candidate on
it not yet matched for this opening (with the features they had, what `opening model` learns
from; once per opening and person, so a changed opening does not re-contact anyone) and the
revision is marked shortlisted: once per change, however often the daemon restarts.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterator
from typing import Any

from mailflow.clock import Clock, iso
from mailflow.errors import MailflowError, UsageError
from mailflow.followups.templates import template_environment
from mailflow.openings import learning, text
from mailflow.openings.ranking import DEFAULT_WEIGHTS, FEATURES, Ranking, Want, rank
from mailflow.openings.rules import (
    COMMAND_PREFIX,
    CONTENT,
    OpeningRules,
    OpeningSpec,
    content,
    load_openings,
    revision,
)
from mailflow.outgoing.notices import notify_hr
from mailflow.outgoing.outbox import Outbox
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import Config
from mailflow.store.base import Doc, Store

log = logging.getLogger("mailflow.openings")

KIND = "openings"
WEIGHTS = "opening_weights"  # settings: the weights `opening model` chose, and why
TEMPLATE = "opening_shortlist.txt.j2"
EVENT = "opening_matched"


class OpeningDesk:
    def __init__(self, store: Store, clock: Clock, config: Config, outbox: Outbox | None,
                 lane: threading.RLock | None = None) -> None:
        self.store, self.clock, self.config, self.outbox = store, clock, config, outbox
        self.lane = lane or threading.RLock()

    def file(self) -> OpeningRules:
        return load_openings(self.config.rules_dir)  # raises ProblemsError

    # -- reading ---------------------------------------------------------------------------

    def all(self) -> list[Doc]:
        return sorted(self.store.scan(KIND), key=lambda o: (o.get("created_at") or "", o["id"]))

    def get(self, opening_id: str) -> Doc:
        """The stored opening, else the file's one not synced yet."""
        found = self.store.get(KIND, opening_id)
        if found is not None:
            return found
        spec = self.file().get(opening_id)
        if spec is None:
            raise MailflowError(f"no opening {opening_id}")
        return {"id": spec.id, **content(spec.model_dump()), "source": "file",
                "state": "open" if spec.open else "closed"}

    def weights(self) -> dict[str, float]:
        stored = (self.store.get("settings", WEIGHTS) or {}).get("weights") or {}
        return {f: float(stored.get(f, DEFAULT_WEIGHTS[f])) for f in FEATURES}

    def match(self, opening_id: str) -> Ranking:
        opening = self.get(opening_id)
        pool = TalentPool(self.store, self.clock)
        return rank(Want.of(opening), pool.all(), self.config.privacy.notified_purposes,
                    text.terms, self.clock.now(), self.weights())

    # -- changing --------------------------------------------------------------------------

    def sync(self) -> list[str]:
        """Bring `openings.toml` into the store; the ids of the openings ranked anew."""
        rules = self.file()
        now, changed = iso(self.clock.now()), []
        with self.lane, self.store.transaction():
            in_file = {spec.id for spec in rules.openings}
            for spec in rules.openings:
                if self._take(spec, now):
                    changed.append(spec.id)
            for doc in list(self.store.scan(KIND)):
                if doc.get("source") == "file" and doc["id"] not in in_file \
                        and doc.get("state") == "open":
                    self._put(doc, now, state="closed", closed_at=now,
                              closed_because="taken out of openings.toml")
        return [i for i in changed if self._tell(i, rules)]

    def _take(self, spec: OpeningSpec, now: str) -> bool:
        new = content(spec.model_dump())
        stored = self.store.get(KIND, spec.id)
        if stored is not None and stored.get("revision") == revision(new):
            return False
        doc: Doc = dict(stored or {"id": spec.id, "source": "file", "created_at": now})
        doc.update(new)
        self._put(doc, now, state="open" if spec.open else "closed", revision=revision(new),
                  closed_at=None if spec.open else now)
        return True

    def _put(self, doc: Doc, now: str, **fields: Any) -> Doc:
        doc.update(fields, updated_at=now)
        self.store.put(KIND, doc["id"], doc)
        return doc

    def add(self, args: dict[str, Any]) -> Doc:
        """`title`, `description`, `location` and lists `required_skills` … (CONTENT)."""
        title = str(args.get("title") or "").strip()
        if not title:
            raise UsageError("an opening needs a --title")
        new = content({key: args.get(key) for key in CONTENT})
        for key in CONTENT[2:6]:
            new[key] = [str(v).strip() for v in new[key] if str(v).strip()]
        new["title"] = title
        rules = self.file()
        now = iso(self.clock.now())
        with self.lane, self.store.transaction():
            opening_id = COMMAND_PREFIX + secrets.token_hex(4)
            while self.store.get(KIND, opening_id) is not None:
                opening_id = COMMAND_PREFIX + secrets.token_hex(4)
            doc = self._put({"id": opening_id, "source": "command", "created_at": now, **new},
                            now, state="open", revision=revision(new))
            self._tell(opening_id, rules)
        return self.store.get(KIND, opening_id) or doc

    def close(self, opening_id: str) -> Doc:
        now = iso(self.clock.now())
        with self.lane, self.store.transaction():
            doc = self.store.get(KIND, opening_id)
            if doc is None:
                raise MailflowError(f"no opening {opening_id}")
            if doc.get("state") == "closed":
                return doc
            return self._put(doc, now, state="closed", closed_at=now, closed_because="command")

    # -- the shortlist ---------------------------------------------------------------------

    def _tell(self, opening_id: str, rules: OpeningRules) -> bool:
        """Rank an open opening's new revision, record the matches, mail HR: once per
        revision. True when it was done now."""
        with self.lane, self.store.transaction():
            doc = self.store.get(KIND, opening_id)
            if doc is None or doc.get("state") != "open" \
                    or doc.get("shortlisted_revision") == doc.get("revision"):
                return False
            ranking = self.match(opening_id)
            top = [m for m in ranking.matches if m.score >= rules.shortlist.min_score]
            top = top[:rules.shortlist.size]
            pool = TalentPool(self.store, self.clock)
            for place, found in enumerate(top, 1):
                if not self._matched_before(found.candidate_id, opening_id):
                    pool.event(found.candidate_id, EVENT, opening_id=opening_id,
                               revision=doc["revision"], rank=place,
                               score=round(found.score, 4), features=found.features)
            outbox_id = self._mail_hr(doc, ranking, top)
            self._put(doc, iso(self.clock.now()), shortlisted_revision=doc["revision"],
                      shortlisted_at=iso(self.clock.now()), shortlist_outbox_id=outbox_id,
                      shortlisted=len(top))
        log.info("opening %s: revision %s ranked, %d on the shortlist", opening_id,
                 doc["revision"], len(top))
        return True

    def _matched_before(self, candidate_id: str, opening_id: str) -> bool:
        """Whether an earlier revision already put the candidate on this opening's shortlist:
        `opening_matched` (and the re-contact it triggers) comes once per opening and person."""
        return any(e.get("type") == EVENT and (e.get("data") or {}).get("opening_id")
                   == opening_id for e in self.store.find("events", "candidate_id",
                                                          candidate_id))

    def _mail_hr(self, opening: Doc, ranking: Ranking, top: list[Any]) -> str | None:
        if self.outbox is None:
            return None
        env = template_environment(self.config.templates_dir)
        body = env.get_template(TEMPLATE).render(
            company_name=self.config.company.name, opening_id=opening["id"],
            opening_title=opening["title"], opening_description=opening.get("description", ""),
            opening_location=opening.get("location", ""), eligible=len(ranking.matches),
            left_out=dict(sorted(ranking.left_out.items())),
            matches=[{"rank": n, **m.as_json(), "reasons": explain(m.parts)}
                     for n, m in enumerate(top, 1)])
        record = notify_hr(self.outbox, self.config, self.clock,
                           f"候補者リスト: {opening['title']}（{len(top)}名）",
                           body.strip("\n") + "\n")
        return record["id"] if record else None

    # -- learning ---------------------------------------------------------------------------

    def examples(self) -> Iterator[learning.Example]:
        pool = TalentPool(self.store, self.clock)
        for event in self.store.find("events", "type", EVENT):
            data = event.get("data") or {}
            candidate = pool.get(str(event.get("candidate_id") or ""))
            values = data.get("features")
            if candidate is None or not isinstance(values, dict):
                continue  # erased since, or recorded without its features
            yield learning.Example({f: float(values.get(f) or 0.0) for f in FEATURES},
                                   learning.outcome(candidate, str(event["at"])))

    def model(self) -> dict[str, Any]:
        """Fit the weights on the outcomes so far; store the ones `match` is to use."""
        with self.lane:
            found = learning.fit(list(self.examples()))
            with self.store.transaction():
                self.store.put("settings", WEIGHTS, {**found.as_json(),
                                                     "at": iso(self.clock.now())})
        log.info("opening model: %s weights (%s)", found.used, found.reason)
        return found.as_json()


def explain(parts: dict[str, float]) -> str:
    """The parts that count most, for a line of HR's mail: `必須スキル 0.33, 職種 0.18`."""
    shown = sorted(((v, k) for k, v in parts.items() if abs(v) >= 0.005), reverse=True)[:4]
    return ", ".join(f"{LABELS.get(k, k)} {v:.2f}" for v, k in shown)


LABELS = {"required_skills": "必須スキル", "preferred_skills": "歓迎スキル",
          "required_qualifications": "必須資格", "preferred_qualifications": "歓迎資格",
          "role": "職種・経歴", "stage": "選考の進み", "rating": "評価", "recency": "最近の接点",
          "intent": "再応募の意向"}
