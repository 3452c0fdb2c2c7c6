"""The pipeline stage for INBOX: the plan (`intake.plan`) carried out. A candidate's reply in a
known thread is recorded on them and told to the reply listeners; an application becomes (or
merges into) a candidate; everything else is logged with its rule."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from mailflow.clock import iso
from mailflow.errors import UnreadableMail
from mailflow.intake.classify import Mailbox
from mailflow.intake.documents import DocumentShelf
from mailflow.intake.plan import InboxPlan, StageLine, Trust, plan_inbox
from mailflow.intake.sources import SourceRules, load_sources
from mailflow.mail.parse import Mail, parse_mail
from mailflow.mailbox.pipeline import Incoming
from mailflow.outgoing.notices import notify_hr, reapplication_notice
from mailflow.outgoing.outbox import Outbox
from mailflow.pool.records import Candidate
from mailflow.pool.referrals import referrer_of
from mailflow.pool.talent import TalentPool, put_documents
from mailflow.profile.corrections import apply_hr
from mailflow.profile.dictionary import SkillDictionary, load_skills
from mailflow.profile.reading import add_readings, read_mail, tell_profile
from mailflow.settings.config import Config

log = logging.getLogger("mailflow.intake")

# Told of a candidate's reply in their thread: the candidate, the thread's Message-IDs, the reply.
ReplyListener = Callable[[Candidate, list[str], Mail], None]


class Applications:
    name = "applications"
    roles = frozenset({"inbox"})

    def __init__(self, pool: TalentPool, config: Config, outbox: Outbox | None = None,
                 on_reply: Sequence[ReplyListener] = ()) -> None:
        self.pool = pool
        self.on_reply = tuple(on_reply)  # e.g. follow-ups: a reply stops the sequence
        self.config = config
        self.outbox = outbox
        self.rules_dir: Path = config.rules_dir
        self.rules: SourceRules = load_sources(self.rules_dir)
        self.skills: SkillDictionary = load_skills(self.rules_dir)
        self.mailbox = Mailbox(config.mailbox.address, tuple(config.company.domains))
        self.trust = Trust(config.mailbox.address, tuple(config.company.domains),
                           tuple(config.mailbox.trusted_authserv_ids))
        self.shelf = DocumentShelf(config.data_dir, config.store.keep_attachments)

    def reload(self) -> None:
        # raises on a broken file: the old rules stay
        rules, skills = load_sources(self.rules_dir), load_skills(self.rules_dir)
        self.rules, self.skills = rules, skills

    def plan(self, mail: Mail) -> InboxPlan:
        """What this mail will do, and why (pure but for reading the pool)."""
        return plan_inbox(mail, self.pool, self.rules, self.mailbox, self.trust,
                          lambda code: referrer_of(self.pool.store, code),
                          self.config.referral.code_param, self.skills)

    def handle(self, message: Incoming) -> None:
        mail = parse_mail(message.raw)
        if mail.unreadable:
            raise UnreadableMail(mail.unreadable)
        with self.shelf.grouped():  # this mail's files durable before its commit
            self.carry_out(self.plan(mail), mail, message)

    def grouped(self) -> AbstractContextManager[None]:
        """A group of mails whose résumé files become durable together (`DocumentShelf`)."""
        return self.shelf.grouped()

    def carry_out(self, plan: InboxPlan, mail: Mail, message: Incoming) -> None:
        if plan.kind == "ignored":
            log.info("%s: not an application (%s: %s)", message.ref, plan.rule, plan.reason)
            return
        if plan.kind == "reply":
            assert plan.candidate is not None
            candidate = plan.candidate
            self.pool.reply(candidate, mail.message_id)
            log.info("%s: reply in the thread of candidate %s", message.ref, candidate["id"])
            for listener in self.on_reply:
                listener(candidate, list(plan.thread), mail)
        else:
            candidate = self._apply(plan, mail, message)
        self._stage(plan.stage, mail, candidate)
        for field, values, said in plan.corrections:
            apply_hr(self.pool, candidate, field, values, said, "#mailflow line")

    def _apply(self, plan: InboxPlan, mail: Mail, message: Incoming) -> Candidate:
        assert plan.applicant is not None
        applied_at = iso(mail.date) if mail.date else None
        documents = [self.shelf.keep(a, mail.message_id, self.pool.now())
                     for a in mail.attachments if not a.inline]
        readings = read_mail(mail, self.skills)
        changed: dict[str, list[str]] = {}

        def details(candidate: Candidate) -> None:  # in the application's one write
            put_documents(candidate, documents)
            changed.update(add_readings(candidate, readings, self.pool.now()))

        candidate, created = self.pool.apply(plan.applicant, mail.message_id, applied_at,
                                             details)
        if plan.reapplication and self.outbox is not None:
            subject, body = reapplication_notice(candidate)
            notify_hr(self.outbox, self.config, self.pool.clock, subject, body, candidate["id"])
        log.info("%s: application via %s -> %s candidate %s", message.ref, plan.rule,
                 "new" if created else "existing", candidate["id"])
        if plan.referrer is not None:
            self._referred(candidate, plan.referrer, plan.rule)
        tell_profile(self.pool, candidate, readings, changed)
        return candidate

    def _referred(self, candidate: Candidate, referrer: str, channel: str) -> None:
        """Record who referred the applicant (the first referrer stays) and the referral on
        the timeline (the KPIs count it)."""
        first = not candidate.get("referred_by")
        if first:
            candidate["referred_by"] = referrer
            self.pool.save(candidate)
        self.pool.event(candidate["id"], "referred", referrer_id=referrer, channel=channel,
                        first=first)
        log.info("candidate %s: referred by candidate %s", candidate["id"], referrer)

    def _stage(self, line: StageLine | None, mail: Mail, candidate: Candidate) -> None:
        """A `#mailflow stage=…` line counts when the company wrote the mail (`authorship`);
        anything else is the candidate's mail, and the attempt is logged."""
        if line is None:
            return
        if not line.counts:
            if line.why != "not From the company":
                log.warning("candidate %s: a #mailflow stage line in INBOX ignored: %s",
                            candidate["id"], line.why)
            return
        at = iso(mail.date) if mail.date else self.pool.now()
        self.pool.record_stage(candidate, line.stage, at, "#mailflow line", line.interviewer,
                               line.rating, line.note)
