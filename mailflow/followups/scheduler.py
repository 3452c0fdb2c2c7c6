"""The follow-up schedule: rows in the store, planned from the timeline, claimed when due.

Planning reads the events log after a cursor (kept in "checkpoints") and writes one row per rule
a new event triggers — `{id, rule, candidate_id, due_at (UTC ISO), state, reason, …}`; rows are
written in slices of `PLAN_WRITES` (short transactions: the web edge's clicks and callbacks wait
for one slice at most) and the cursor moves after them. Restart-safe: a row's id follows from its
rule, candidate and trigger, and a row already there is not written again (done rows stay), so a
crash between the slices and the cursor plans nothing twice; it costs what the new events cost.
A tick (`tick`) plans, then claims only rows with `due_at <= now` (`store.below`), asks the rule
again at send time, keeps to the polite window and the limits (a row outside them is postponed,
not skipped; `followups/window.py`) and carries the rule out; a mail is queued in the outbox in
the same transaction that marks its row sent, so a restart across a due time sends it once.
Rows that are done leave the `due_at` index (see `followups.rows.finish`): a tick never meets
them again. A repeating rule's next occurrence is planned in the transaction that settles the one
before (`followups/repeat.py`); a rule with `content` mails the newest post the person was not
sent, or is skipped when nothing is new (`followups/mailing.py`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from jinja2 import Template, meta

from mailflow import faults
from mailflow.clock import Clock, iso, parse_iso
from mailflow.followups.conditions import Facts, deliverable_address
from mailflow.followups.mailing import Mailings
from mailflow.followups.message import followup_mail
from mailflow.followups.posts import EMPTY, Post
from mailflow.followups.repeat import past_end, plan_next
from mailflow.followups.replies import stop_on_reply
from mailflow.followups.rows import (
    FollowUpRow,
    Trigger,
    as_followup_row,
    cancel_planned,
    finish,
    rows_for,
)
from mailflow.followups.rules import FollowupRules, Rule, load_followups
from mailflow.followups.templates import template_environment
from mailflow.followups.unsubscribe import Unsubscribes
from mailflow.followups.window import Limits, Postpone, Window
from mailflow.outgoing.notices import notify_hr
from mailflow.outgoing.outbox import Outbox
from mailflow.pool.consent_links import consent_link, consent_token
from mailflow.pool.records import Candidate, as_event
from mailflow.pool.referrals import referral_link, referral_token
from mailflow.pool.talent import TalentPool
from mailflow.relay.desk import new_referral_code, new_token
from mailflow.settings.config import Config
from mailflow.store.base import Doc, Store

log = logging.getLogger("mailflow.followups")

CURSOR = "followups-planner"
PLAN_BATCH = 500
PLAN_WRITES = 50  # planned rows written per transaction (the web edge waits at most for one)
GROUP = 50  # due rows handled per store transaction (one commit, one fsync, per group)
FOLLOWUPS_LOCK = "followups"  # Store.lock_until_commit: one tick or planner at a time per store


@dataclass(frozen=True)
class Skip:
    why: str


class FollowUpScheduler:
    def __init__(self, store: Store, clock: Clock, config: Config, outbox: Outbox | None,
                 lane: threading.RLock | None = None, rules: FollowupRules | None = None) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.outbox = outbox
        self.lane = lane or threading.RLock()
        self.rules = rules or load_followups(config.rules_dir, config.templates_dir,
                                             config.privacy.purposes)
        self.window = Window.from_config(config)
        self.limits = Limits(store, config, self.window)
        self.zone = config.zone
        self.notified = frozenset(config.privacy.notified_purposes)
        self.pool = TalentPool(store, clock)
        self.unsubscribes = Unsubscribes(store, clock, config.web.public_url, self.lane,
                                         config.company.name)
        self._templates = template_environment(config.templates_dir)
        self._uses: dict[str, frozenset[str]] = {}
        self._subjects: dict[str, Template] = {}
        self.mailings = Mailings(store, clock, self.lane, self.zone, config.newsletter)

    def reload(self) -> None:
        rules = load_followups(self.config.rules_dir, self.config.templates_dir,
                               self.config.privacy.purposes)  # raises
        self.rules, self._uses, self._subjects = rules, {}, {}
        self._templates = template_environment(self.config.templates_dir)

    def tick(self) -> Counter[str]:
        """Plan from new events, then handle what is due. Outcomes counted by name."""
        self.mailings.refresh(self.rules)  # a feed due a new copy is fetched first
        planned = self.plan()
        outcomes = self.run_due()
        if planned:
            outcomes["planned"] = planned
        return outcomes

    # -- planning -------------------------------------------------------------------------------

    def plan(self) -> int:
        # several daemons on one store share the cursor: a batch planned twice creates each row
        # once (rows are keyed by event and rule, created only when absent, under the lock)
        cursor = int((self.store.get("checkpoints", CURSOR) or {}).get("seq", 0))
        created, batch = 0, []
        for entry in self.store.log("events", after=cursor):
            batch.append(entry)
            if len(batch) >= PLAN_BATCH:
                created += self._plan_batch(batch)
                batch = []
        return created + (self._plan_batch(batch) if batch else 0)

    def _plan_batch(self, batch: list[tuple[int, Doc]]) -> int:
        """The rows are worked out before the lane is taken (events are a log: they do not
        change), so the web edge's clicks and callbacks wait only for the writes."""
        now, created, planned = iso(self.clock.now()), 0, []
        for _seq, doc in batch:
            event = as_event(doc)
            candidate = (self.pool.get(str(event["candidate_id"]))
                         if self.rules.field_rules and event.get("candidate_id") else None)
            planned += rows_for(self.rules, event, candidate, self.zone, now)
        for start in range(0, len(planned), PLAN_WRITES):  # the lane taken a slice at a time
            with self.lane, self.store.transaction():
                self.store.lock_until_commit(FOLLOWUPS_LOCK)  # other daemons' planners, ticks
                for row in planned[start:start + PLAN_WRITES]:
                    if self.store.get("followups", row["id"]) is None:
                        self.store.put("followups", row["id"], row)
                        created += 1
        with self.lane, self.store.transaction():  # after the rows: a crash plans them again
            self.store.put("checkpoints", CURSOR, {"seq": batch[-1][0], "at": now})
        return created

    # -- the tick -------------------------------------------------------------------------------

    def run_due(self) -> Counter[str]:
        now = self.clock.now()
        outcomes: Counter[str] = Counter()
        due = self.store.below("followups", "due_at", iso(now), self.config.followups.batch)
        for start in range(0, len(due), GROUP):
            with self.lane, self.store.transaction():  # each row is a savepoint inside it
                # another daemon's tick on the same rows waits, then finds them settled ("gone":
                # `_settle` re-reads each row inside this lock)
                self.store.lock_until_commit(FOLLOWUPS_LOCK)
                for row in due[start:start + GROUP]:
                    outcomes[self._handle(row["id"], now)] += 1
            if outcomes["sent"]:
                faults.point("followups:sent")  # committed, not yet delivered (crash tests)
        return outcomes

    def _handle(self, row_id: str, now: datetime) -> str:
        stamp = iso(now)
        try:
            with self.lane, self.store.transaction():
                outcome = self._settle(row_id, now)
        except Exception as exc:  # a broken template or a bug: this row only, never the tick
            log.exception("follow-up %s: failed", row_id)
            with self.lane, self.store.transaction():
                row = self._row(row_id)
                if row is not None and row["state"] == "planned":
                    finish(self.store, row, "skipped", f"error: {type(exc).__name__}: {exc}",
                           stamp)
                    plan_next(self.store, self.rules, row, self.zone, stamp)
            return "failed"
        if not isinstance(outcome, Rule):
            return outcome
        log.info("follow-up %s: done (%s)", row_id, "; ".join(outcome.actions()))
        return "sent"

    def _settle(self, row_id: str, now: datetime) -> str | Rule:
        """One due row, inside its transaction: "gone", "postponed", "skipped", or the rule
        that was carried out."""
        stamp = iso(now)
        row = self._row(row_id)
        if row is None or row["state"] != "planned" or (row.get("due_at") or "~") > stamp:
            return "gone"
        verdict = self._decide(row, now)
        if isinstance(verdict, Postpone):
            row["due_at"], row["reason"], row["updated_at"] = iso(verdict.at), verdict.why, stamp
            self.store.put("followups", row_id, row)
            return "postponed"
        if isinstance(verdict, Skip):
            finish(self.store, row, "skipped", verdict.why, stamp)
            plan_next(self.store, self.rules, row, self.zone, stamp)  # a repeating rule's next
            log.info("follow-up %s: skipped: %s", row_id, verdict.why)
            return "skipped"
        rule, candidate, post = verdict
        done = self._act(row, rule, candidate, now, post)
        finish(self.store, row, "sent", "; ".join(rule.actions()), stamp, sent_at=stamp, **done)
        plan_next(self.store, self.rules, row, self.zone, stamp)
        faults.point("followups:queued")  # inside the transaction (crash tests)
        return rule

    def _row(self, row_id: str) -> FollowUpRow | None:
        doc = self.store.get("followups", row_id)
        return as_followup_row(doc) if doc is not None else None

    def _decide(self, row: FollowUpRow, now: datetime
                ) -> Postpone | Skip | tuple[Rule, Candidate, Post | None]:
        rule = self.rules.get(row["rule"])
        if rule is None:
            return Skip(f"rule {row['rule']!r} is no longer in followups.toml")
        candidate = self.pool.get(row["candidate_id"])
        if candidate is None:
            return Skip("the candidate was erased")
        if rule.catch_up.after(parse_iso(str(row["due_at"])), self.zone) < now:
            return Skip(f"overdue since {row['due_at']} (catch_up {rule.catch_up})")
        if past_end(rule, row, self.zone):
            return Skip(f"after the rule's end (until {rule.until})")
        why = rule.fails(Facts(candidate, self.notified))
        if why is not None:
            return Skip(why)
        post = self.mailings.next_post(rule, candidate, now) if rule.content else None
        if rule.content and post is None:
            return Skip("no new post to send")
        if rule.send:
            wait = self.limits.wait(candidate["id"], now)
            if wait is not None:
                return wait
        return rule, candidate, post

    # -- carrying a rule out --------------------------------------------------------------------

    def _act(self, row: FollowUpRow, rule: Rule, candidate: Candidate, now: datetime,
             post: Post | None = None) -> Doc:
        done: Doc = {}
        stamp = iso(now)
        tags = candidate.setdefault("tags", [])
        tags.extend(t for t in dict.fromkeys(rule.tag_add) if t not in tags)
        candidate["tags"] = [t for t in tags if t not in rule.tag_remove]
        if rule.send:
            done = self._send(row, rule, candidate, now, post)
        if post is not None:
            self.mailings.mark_sent(candidate, rule, post)
            done["post"] = post.id
        self.pool.save(candidate)
        if rule.notify_hr and self.outbox is not None:
            body = (f"フォローアップ「{rule.name}」の通知です。\n\n{rule.notify_hr}\n\n"
                    f"候補者: {candidate.get('name') or '(氏名不明)'} ({candidate['id']})\n"
                    f"詳細: mailflow candidate show {candidate['id']}\n")
            notify_hr(self.outbox, self.config, self.clock, rule.notify_hr, body, candidate["id"])
        if rule.stop_followups:
            cancel_planned(self.store, candidate["id"], f"stopped by rule {rule.name}", stamp,
                           keep=row["id"])
        self.pool.event(candidate["id"], "followup", rule=rule.name, followup_id=row["id"],
                        actions=rule.actions(), outbox_id=done.get("outbox_id"))
        return done

    def _send(self, row: FollowUpRow, rule: Rule, candidate: Candidate, now: datetime,
              post: Post | None = None) -> Doc:
        if self.outbox is None:
            raise RuntimeError("no outbox to send through")
        assert rule.send is not None and rule.purpose is not None
        outbox = self.outbox
        address = deliverable_address(candidate)
        assert address is not None  # the Deliverable guard held
        token = self.unsubscribes.issue(candidate["id"], rule.purpose, row["id"])
        link = self.unsubscribes.link(token)
        values = self.values(rule, candidate, link, now, row.get("trigger"), post)
        if rule.subject not in self._subjects:
            self._subjects[rule.subject] = self._templates.from_string(rule.subject)
        subject = self._subjects[rule.subject].render(values).strip()
        text = self._templates.get_template(rule.send).render(values).strip("\n")
        digest = hashlib.sha256(row["id"].encode()).hexdigest()[:24]
        message_id = f"<followup.{digest}@{outbox.domain}>"

        def build(_given: str) -> bytes:
            return followup_mail(self.config.company.name, outbox.sender, address, subject,
                                 text, link, now, message_id, rule.name)

        record = outbox.queue(to=[address], purpose=f"followup:{rule.name}",
                              candidate_id=candidate["id"], build=build)
        if record["message_id"] not in candidate.setdefault("message_ids", []):
            candidate["message_ids"].append(record["message_id"])  # a reply finds its thread
        self.limits.count_mail(now)
        return {"outbox_id": record["id"], "message_id": record["message_id"], "mailed": True,
                "purpose": rule.purpose}

    def values(self, rule: Rule, candidate: Candidate, unsubscribe_link: str,
               now: datetime, trigger: Trigger | None = None, post: Post | None = None) -> Doc:
        """The template variables (templates/README.md); the opening's from the row's trigger
        (an `opening_matched` event), else empty; the post of a repeating rule's occurrence."""
        applications = candidate.get("applications") or []
        rejection = candidate.get("rejection")
        rejected = rejection.get("at") if rejection else None
        uses = self._uses_of(rule)
        return {
            "candidate_name": str(candidate.get("name") or ""),
            "company_name": self.config.company.name,
            "position": str(applications[-1].get("position") or "") if applications else "",
            "rejected_at": _local_date(rejected, self.zone),
            "relay_link": self._relay_link(candidate, now) if "relay_link" in uses else "",
            "apply_url": self.config.followups.apply_url,
            "unsubscribe_link": unsubscribe_link,
            "consent_url": self._consent_url(candidate) if "consent_url" in uses else "",
            **self._opening(trigger),
            "post": post.as_vars() if post is not None else dict(EMPTY),
            "referral_url": self._referral_url(candidate) if "referral_url" in uses else "",
        }

    def _opening(self, trigger: Trigger | None) -> dict[str, str]:
        opening_id = trigger.get("opening_id") if trigger else None
        doc = self.store.get("openings", opening_id) if opening_id else None
        return {f"opening_{key}": str((doc or {}).get(key) or "")
                for key in ("title", "description", "location")}

    def _uses_of(self, rule: Rule) -> frozenset[str]:
        key = f"{rule.send}\0{rule.subject}"
        if key not in self._uses:
            assert self._templates.loader is not None and rule.send is not None
            source = self._templates.loader.get_source(self._templates, rule.send)[0]
            names = meta.find_undeclared_variables(self._templates.parse(source))
            names |= meta.find_undeclared_variables(self._templates.parse(rule.subject))
            self._uses[key] = frozenset(names)
        return self._uses[key]

    def _consent_url(self, candidate: Candidate) -> str:
        """The candidate's consent page (the same link in every mail)."""
        token = consent_token(self.store, self.clock, candidate["id"])
        return consent_link(self.config.web.public_url, token)

    def _referral_url(self, candidate: Candidate) -> str:
        """The candidate's personal referral link (`/f/{token}`); "" without `[referral]
        apply_url`."""
        if not self.config.referral.apply_url:
            return ""
        token = referral_token(self.store, self.clock, candidate["id"])
        return referral_link(self.config.web.public_url, token)

    def _relay_link(self, candidate: Candidate, now: datetime) -> str:
        """A new tracked Career Relay link (same referral code); issuing it invites."""
        code = candidate.get("relay_ref")
        while not code or (code != candidate.get("relay_ref")
                           and self.store.find("candidates", "relay_ref", code)):
            code = new_referral_code()
        token = new_token()
        rejection = candidate.get("rejection")
        rejection_id = rejection.get("id") if rejection else None
        self.store.put("tokens", token, {"candidate_id": candidate["id"],
                                         "rejection_id": rejection_id,
                                         "issued_at": iso(now), "relay_ref": code,
                                         "message_id": None})
        candidate["relay_ref"] = code
        if candidate.get("relay_status") in (None, "not_invited"):
            candidate["relay_status"] = "invited"
            self.pool.event(candidate["id"], "invited", source="followup")
        return f"{self.config.web.public_url.rstrip('/')}/r/{token}"

    # -- a reply stops the sequence ---------------------------------------------------------------

    def replied(self, candidate: Candidate, thread: Iterable[str]) -> bool:
        return stop_on_reply(self.store, self.clock, self.config, self.outbox, candidate, thread)


def _local_date(value: str | None, zone: ZoneInfo) -> str:
    if not value:
        return ""
    try:
        day = parse_iso(value).astimezone(zone)
    except ValueError:
        return ""
    return f"{day.year}年{day.month}月{day.day}日"
