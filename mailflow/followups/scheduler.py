"""The follow-up schedule: rows in the store, planned from the timeline, claimed when due.

Planning reads the events log after a cursor (kept in "checkpoints") and writes one row per rule
a new event triggers — `{id, rule, candidate_id, due_at (UTC ISO), state, reason, …}` — in the
same transaction that moves the cursor: restart-safe, and it costs what the new events cost.
A tick (`tick`) plans, then claims only rows with `due_at <= now` (`store.below`), asks the rule
again at send time, keeps to the polite window and the limits (a row outside them is postponed,
not skipped) and carries the rule out; a mail is queued in the outbox in the same transaction
that marks its row sent, so a restart across a due time sends it once. Rows that are done leave
the `due_at` index (see `followups.finish`): a tick never meets them again.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.header import Header
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr
from zoneinfo import ZoneInfo

import holidays
from jinja2 import Template, meta

from mailflow import faults
from mailflow.clock import Clock, iso, parse_iso
from mailflow.followups.rules import (
    Facts,
    FollowupRules,
    Rule,
    cancel_planned,
    deliverable_address,
    field_value,
    finish,
    is_human_click,
    load_followups,
    new_row,
    template_environment,
)
from mailflow.followups.unsubscribe import Unsubscribes
from mailflow.outgoing.notices import notify_hr
from mailflow.outgoing.outbox import Outbox
from mailflow.pool.talent import TalentPool
from mailflow.relay.desk import new_referral_code, new_token
from mailflow.settings.config import Config
from mailflow.settings.durations import parse_delay
from mailflow.store.base import Doc, Store

log = logging.getLogger("mailflow.followups")

CURSOR = "followups-planner"
RATE = "followups-rate"
PLAN_BATCH = 500
GROUP = 50  # due rows handled per store transaction (one commit, one fsync, per group)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HEADER = "X-Mailflow-Followup"


class Window:
    """The polite sending window: some weekdays, business hours, no public holidays."""

    def __init__(self, days: Iterable[str], start: str, end: str, zone: ZoneInfo,
                 country: str = "JP") -> None:
        self.days = {WEEKDAYS.index(day) for day in days}
        self.start, self.end = (int(t[:-3]) * 60 + int(t[-2:]) for t in (start, end))
        self.zone = zone
        self.holidays = holidays.country_holidays(country) if country else None

    @classmethod
    def from_config(cls, config: Config) -> Window:
        f = config.followups
        return cls(f.days, f.start, f.end, config.zone, f.holidays)

    def open_day(self, day: date) -> bool:
        # `is not None`: a holidays object is empty (falsy) until a year is looked up
        return day.weekday() in self.days and not (self.holidays is not None
                                                   and day in self.holidays)

    def opening(self, at: datetime) -> datetime:
        """`at` when the window is open then, else the next time it opens."""
        local = at.astimezone(self.zone)
        for offset in range(0, 400):
            day = local.date() + timedelta(days=offset)
            if not self.open_day(day):
                continue
            midnight = datetime(day.year, day.month, day.day, tzinfo=self.zone)
            start = midnight + timedelta(minutes=self.start)
            end = midnight + timedelta(minutes=self.end)
            if offset == 0 and local >= end:
                continue
            return max(start, local) if offset == 0 else start
        raise ValueError("the sending window never opens (check [followups] days)")


# -- planning -----------------------------------------------------------------------------------


def rows_for(rules: FollowupRules, event: Doc, candidate: Doc | None, zone: ZoneInfo,
             now: str) -> list[Doc]:
    """The rows one timeline event plans (`candidate` is needed only by date-field rules)."""
    candidate_id = event.get("candidate_id")
    if not candidate_id:
        return []
    rows = []
    for rule in rules.for_event(str(event["type"])):
        if rule.trigger == "event:clicked" and not is_human_click(event):
            continue
        trigger = {"event": event["type"], "at": event["at"]}
        rows.append(new_row(rule, candidate_id, f"{event['type']}@{event['at']}",
                            parse_iso(event["at"]), zone, now, trigger))
    for rule in rules.field_rules if candidate is not None else ():
        assert candidate is not None
        value = field_value(candidate, rule.trigger[6:])
        try:
            base = parse_iso(value) if value else None
        except ValueError:
            base = None
        if base is not None:
            trigger = {"field": rule.trigger[6:], "at": value}
            rows.append(new_row(rule, candidate_id, str(value), base, zone, now, trigger))
    return rows


@dataclass(frozen=True)
class Postpone:
    at: datetime
    why: str


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
        self.rules = rules or load_followups(config.rules_dir, config.templates_dir)
        self.window = Window.from_config(config)
        self.zone = config.zone
        self.notified = frozenset(config.privacy.notified_purposes)
        self.pool = TalentPool(store, clock)
        self.unsubscribes = Unsubscribes(store, clock, config.web.public_url, self.lane,
                                         config.company.name)
        self._templates = template_environment(config.templates_dir)
        self._uses: dict[str, frozenset[str]] = {}
        self._subjects: dict[str, Template] = {}

    def reload(self) -> None:
        rules = load_followups(self.config.rules_dir, self.config.templates_dir)  # raises
        self.rules, self._uses, self._subjects = rules, {}, {}
        self._templates = template_environment(self.config.templates_dir)

    def tick(self) -> Counter[str]:
        """Plan from new events, then handle what is due. Outcomes counted by name."""
        planned = self.plan()
        outcomes = self.run_due()
        if planned:
            outcomes["planned"] = planned
        return outcomes

    # -- planning -------------------------------------------------------------------------------

    def plan(self) -> int:
        cursor = int((self.store.get("checkpoints", CURSOR) or {}).get("seq", 0))
        created, batch = 0, []
        for entry in self.store.log("events", after=cursor):
            batch.append(entry)
            if len(batch) >= PLAN_BATCH:
                created += self._plan_batch(batch)
                batch = []
        return created + (self._plan_batch(batch) if batch else 0)

    def _plan_batch(self, batch: list[tuple[int, Doc]]) -> int:
        now, created = iso(self.clock.now()), 0
        with self.lane, self.store.transaction():
            for _seq, event in batch:
                candidate = (self.store.get("candidates", event["candidate_id"])
                             if self.rules.field_rules and event.get("candidate_id") else None)
                for row in rows_for(self.rules, event, candidate, self.zone, now):
                    if self.store.get("followups", row["id"]) is None:
                        self.store.put("followups", row["id"], row)
                        created += 1
            self.store.put("checkpoints", CURSOR, {"seq": batch[-1][0], "at": now})
        return created

    # -- the tick -------------------------------------------------------------------------------

    def run_due(self) -> Counter[str]:
        now = self.clock.now()
        outcomes: Counter[str] = Counter()
        due = self.store.below("followups", "due_at", iso(now), self.config.followups.batch)
        for start in range(0, len(due), GROUP):
            with self.lane, self.store.transaction():  # each row is a savepoint inside it
                for row in due[start:start + GROUP]:
                    outcomes[self._handle(row["id"], now)] += 1
            if outcomes["sent"]:
                faults.point("followups:sent")  # committed, not yet delivered (crash tests)
        return outcomes

    def _handle(self, row_id: str, now: datetime) -> str:
        stamp = iso(now)
        try:
            with self.lane, self.store.transaction():
                row = self.store.get("followups", row_id)
                if row is None or row["state"] != "planned" or (row.get("due_at") or "~") > stamp:
                    return "gone"
                verdict = self._decide(row, now)
                if isinstance(verdict, Postpone):
                    row.update(due_at=iso(verdict.at), reason=verdict.why, updated_at=stamp)
                    self.store.put("followups", row_id, row)
                    return "postponed"
                if isinstance(verdict, Skip):
                    finish(self.store, row, "skipped", verdict.why, stamp)
                    log.info("follow-up %s: skipped: %s", row_id, verdict.why)
                    return "skipped"
                rule, candidate = verdict
                done = self._act(row, rule, candidate, now)
                finish(self.store, row, "sent", "; ".join(rule.actions()), stamp,
                       sent_at=stamp, **done)
                faults.point("followups:queued")  # inside the transaction (crash tests)
        except Exception as exc:  # a broken template or a bug: this row only, never the tick
            log.exception("follow-up %s: failed", row_id)
            with self.lane, self.store.transaction():
                row = self.store.get("followups", row_id)
                if row is not None and row["state"] == "planned":
                    finish(self.store, row, "skipped", f"error: {type(exc).__name__}: {exc}",
                           stamp)
            return "failed"
        log.info("follow-up %s: done (%s)", row_id, "; ".join(rule.actions()))
        return "sent"

    def _decide(self, row: Doc, now: datetime) -> Postpone | Skip | tuple[Rule, Doc]:
        rule = self.rules.get(row["rule"])
        if rule is None:
            return Skip(f"rule {row['rule']!r} is no longer in followups.toml")
        candidate = self.store.get("candidates", row["candidate_id"])
        if candidate is None:
            return Skip("the candidate was erased")
        if rule.catch_up.after(parse_iso(row["due_at"]), self.zone) < now:
            return Skip(f"overdue since {row['due_at']} (catch_up {rule.catch_up})")
        why = rule.fails(Facts(candidate, self.notified))
        if why is not None:
            return Skip(why)
        if rule.send:
            opening = self.window.opening(now)
            if opening > now:
                return Postpone(opening, "outside the sending window")
            full = self._hour_full(now)
            if full is not None:
                return Postpone(full, f"{self.config.followups.per_hour} mails this hour")
            last = self._last_mail(candidate["id"])
            period = self.config.followups.per_candidate
            if last is not None:
                free = parse_delay(period).after(last, self.zone)
                if free > now:
                    return Postpone(free, f"one follow-up per candidate per {period}")
        return rule, candidate

    def _hour_full(self, now: datetime) -> datetime | None:
        sent = (self.store.get("settings", RATE) or {}).get("sent", [])
        hour_ago = iso(now - timedelta(hours=1))  # one ISO form: text order is time order
        recent = [t for t in sent if t > hour_ago]
        if len(recent) < self.config.followups.per_hour:
            return None
        return parse_iso(recent[0]) + timedelta(hours=1, seconds=1)

    def _count_mail(self, now: datetime) -> None:
        sent = (self.store.get("settings", RATE) or {}).get("sent", [])
        hour_ago = iso(now - timedelta(hours=1))
        recent = [t for t in sent if t > hour_ago] + [iso(now)]
        self.store.put("settings", RATE, {"sent": recent[-self.config.followups.per_hour:]})

    def _last_mail(self, candidate_id: str) -> datetime | None:
        sent = [r["sent_at"] for r in self.store.find("followups", "candidate_id", candidate_id)
                if r["state"] == "sent" and r.get("mailed")]
        return parse_iso(max(sent)) if sent else None

    # -- carrying a rule out --------------------------------------------------------------------

    def _act(self, row: Doc, rule: Rule, candidate: Doc, now: datetime) -> Doc:
        done: Doc = {}
        stamp = iso(now)
        tags = candidate.setdefault("tags", [])
        tags.extend(t for t in dict.fromkeys(rule.tag_add) if t not in tags)
        candidate["tags"] = [t for t in tags if t not in rule.tag_remove]
        if rule.send:
            done = self._send(row, rule, candidate, now)
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

    def _send(self, row: Doc, rule: Rule, candidate: Doc, now: datetime) -> Doc:
        if self.outbox is None:
            raise RuntimeError("no outbox to send through")
        assert rule.send is not None and rule.purpose is not None
        outbox = self.outbox
        address = deliverable_address(candidate)
        assert address is not None  # the Deliverable guard held
        token = self.unsubscribes.issue(candidate["id"], rule.purpose, row["id"])
        link = self.unsubscribes.link(token)
        values = self.values(rule, candidate, link, now)
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
        self._count_mail(now)
        return {"outbox_id": record["id"], "message_id": record["message_id"], "mailed": True,
                "purpose": rule.purpose}

    def values(self, rule: Rule, candidate: Doc, unsubscribe_link: str, now: datetime) -> Doc:
        """The template variables (templates/README.md)."""
        applications = candidate.get("applications") or []
        rejected = (candidate.get("rejection") or {}).get("at")
        uses = self._uses_of(rule)
        return {
            "candidate_name": str(candidate.get("name") or ""),
            "company_name": self.config.company.name,
            "position": str(applications[-1].get("position") or "") if applications else "",
            "rejected_at": _local_date(rejected, self.zone),
            "relay_link": self._relay_link(candidate, now) if "relay_link" in uses else "",
            "apply_url": self.config.followups.apply_url,
            "unsubscribe_link": unsubscribe_link,
        }

    def _uses_of(self, rule: Rule) -> frozenset[str]:
        key = f"{rule.send}\0{rule.subject}"
        if key not in self._uses:
            assert self._templates.loader is not None and rule.send is not None
            source = self._templates.loader.get_source(self._templates, rule.send)[0]
            names = meta.find_undeclared_variables(self._templates.parse(source))
            names |= meta.find_undeclared_variables(self._templates.parse(rule.subject))
            self._uses[key] = frozenset(names)
        return self._uses[key]

    def _relay_link(self, candidate: Doc, now: datetime) -> str:
        """A new tracked Career Relay link (same referral code); issuing it invites."""
        code = candidate.get("relay_ref")
        while not code or (code != candidate.get("relay_ref")
                           and self.store.find("candidates", "relay_ref", code)):
            code = new_referral_code()
        token = new_token()
        rejection = candidate.get("rejection") or {}
        self.store.put("tokens", token, {"candidate_id": candidate["id"],
                                         "rejection_id": rejection.get("id"),
                                         "issued_at": iso(now), "relay_ref": code,
                                         "message_id": None})
        candidate["relay_ref"] = code
        if candidate.get("relay_status") in (None, "not_invited"):
            candidate["relay_status"] = "invited"
            self.pool.event(candidate["id"], "invited", source="followup")
        return f"{self.config.web.public_url.rstrip('/')}/r/{token}"

    # -- a reply stops the sequence ---------------------------------------------------------------

    def replied(self, candidate: Doc, thread: Iterable[str]) -> bool:
        return stop_on_reply(self.store, self.clock, self.config, self.outbox, candidate, thread)


def stop_on_reply(store: Store, clock: Clock, config: Config, outbox: Outbox | None,
                  candidate: Doc, thread: Iterable[str]) -> bool:
    """A candidate's reply to a follow-up (In-Reply-To/References) stops their sequence and
    tells HR. False when the mail does not answer a follow-up."""
    answered = next((record for message_id in thread
                     for record in store.find("outbox", "message_id", message_id)
                     if str(record.get("purpose", "")).startswith("followup:")), None)
    if answered is None:
        return False
    now = iso(clock.now())
    with store.transaction():
        cancelled = cancel_planned(store, candidate["id"], "the candidate replied to a follow-up",
                                   now)
        TalentPool(store, clock).event(candidate["id"], "followups_stopped", reason="replied",
                                       outbox_id=answered["id"], cancelled=cancelled)
    log.warning("candidate %s replied to follow-up mail %s: sequence stopped (%d planned "
                "cancelled); HR is told", candidate["id"], answered["id"], cancelled)
    if outbox is not None:
        rule = str(answered["purpose"]).removeprefix("followup:")
        body = (f"フォローアップ（{rule}）に候補者から返信がありました。以降のフォローアップは"
                f"停止しました。受信箱の返信をご確認ください。\n\n"
                f"候補者: {candidate.get('name') or '(氏名不明)'} ({candidate['id']})\n"
                f"詳細: mailflow candidate show {candidate['id']}\n")
        notify_hr(outbox, config, clock, "フォローアップへの返信がありました", body,
                  candidate["id"])
    return True


def reply_listener(store: Store, clock: Clock, config: Config,
                   outbox: Outbox | None) -> Callable[[Doc, list[str]], None]:
    """The follow-ups' subscriber to intake's replies (`intake.applications.ReplyListener`)."""
    def heard(candidate: Doc, thread: list[str]) -> None:
        stop_on_reply(store, clock, config, outbox, candidate, thread)

    return heard


def followup_mail(company: str, sender: str, to: str, subject: str, text: str,
                  unsubscribe_link: str, when: datetime, message_id: str, rule: str) -> bytes:
    """A plain-text follow-up with RFC 8058 one-click unsubscribe and a visible link (built
    with the compat32 API: about six times faster than EmailMessage's header parsing)."""
    if unsubscribe_link not in text:
        text += f"\n\n――――――――――\n今後このご案内が不要な場合は、こちらから配信を停止できます:\n" \
                f"{unsubscribe_link}"
    message = MIMEText(text + "\n", "plain", "utf-8")
    message["From"] = formataddr((company, sender), charset="utf-8") if company else sender
    message["To"] = to
    message["Subject"] = Header(subject, "utf-8", header_name="Subject").encode()
    message["Date"] = format_datetime(when)
    message["Message-ID"] = message_id
    message["List-Unsubscribe"] = f"<{unsubscribe_link}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message[HEADER] = rule
    return message.as_bytes()


def _local_date(value: str | None, zone: ZoneInfo) -> str:
    if not value:
        return ""
    try:
        day = parse_iso(value).astimezone(zone)
    except ValueError:
        return ""
    return f"{day.year}年{day.month}月{day.day}日"


def preview(store: Store, config: Config, rules: FollowupRules, at: datetime,
            candidate_id: str | None = None) -> list[Doc]:
    """`rules test`: the follow-ups that would be due by `at` (moved into the sending window),
    planned afresh from the timeline with `rules`, each with what it would do and whether its
    conditions hold now. Reads only."""
    zone, window, stamp = config.zone, Window.from_config(config), iso(at)
    notified = frozenset(config.privacy.notified_purposes)
    if candidate_id is not None:
        events: Iterable[Doc] = store.find("events", "candidate_id", candidate_id)
        known = store.find("followups", "candidate_id", candidate_id)
    else:
        events = (event for _seq, event in store.log("events"))
        known = store.below("followups", "due_at", stamp, 1_000_000)
    rows: dict[str, Doc] = {}
    for event in events:
        owner = event.get("candidate_id")
        candidate = store.get("candidates", owner) if rules.field_rules and owner else None
        for row in rows_for(rules, event, candidate, zone, stamp):
            rows.setdefault(row["id"], store.get("followups", row["id"]) or row)
    for row in known:
        rows.setdefault(row["id"], row)
    found = []
    for row in rows.values():
        if row["state"] != "planned" or not row.get("due_at") or row["due_at"] > stamp:
            continue
        rule, candidate = rules.get(row["rule"]), store.get("candidates", row["candidate_id"])
        when = parse_iso(row["due_at"])
        when = window.opening(when) if rule is not None and rule.send else when
        if when > at:
            continue
        why = ("rule no longer in followups.toml" if rule is None else
               "the candidate was erased" if candidate is None else
               rule.fails(Facts(candidate, notified)))
        found.append({"rule": row["rule"], "candidate_id": row["candidate_id"],
                      "due_at": iso(when), "planned_due_at": row.get("planned_due_at"),
                      "action": "; ".join(rule.actions()) if rule else "",
                      "would": "skip" if why else "fire", "reason": why or "",
                      "trigger": row.get("trigger")})
    return sorted(found, key=lambda r: (r["due_at"], r["candidate_id"], r["rule"]))
