"""The pipeline stage for the Sent folder: what HR sent moves candidates through the selection,
and a rejection HR sent without mailflow is recorded (and, when configured, followed by a short
separate invitation through the outbox)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from mailflow.clock import Clock, iso
from mailflow.errors import UnreadableMail
from mailflow.intake.stages import StageRules, load_stages
from mailflow.mail.parse import Mail, parse_mail
from mailflow.mail.rewrite.render import InvitationContext
from mailflow.mailbox.pipeline import Incoming
from mailflow.outgoing.outbox import Outbox
from mailflow.pool.records import Candidate
from mailflow.pool.talent import TalentPool
from mailflow.profile.corrections import apply_hr
from mailflow.profile.dictionary import SkillDictionary, load_skills
from mailflow.rejection.invitation_mail import invitation_mail
from mailflow.rejection.recognise import Decision, HrNote
from mailflow.rejection.rewriting import RewriteSettings
from mailflow.rejection.sent_plan import SentPlan, plan_sent
from mailflow.relay.desk import RejectionFacts, RelayDesk
from mailflow.settings.config import Config

log = logging.getLogger("mailflow.sent")

Review = Callable[[bytes, Decision, str], None]  # `ReviewDesk.saw`


class SentMail:
    name = "sent"
    roles = frozenset({"sent"})

    def __init__(self, pool: TalentPool, config: Config, clock: Clock,
                 outbox: Outbox | None = None, review: Review | None = None) -> None:
        self.pool = pool
        self.review = review
        self.config = config
        self.clock = clock
        self.outbox = outbox
        self.rules_dir: Path = config.rules_dir
        self.rules: StageRules = load_stages(self.rules_dir)
        self.skills: SkillDictionary = load_skills(self.rules_dir)
        self.rewrite = RewriteSettings.from_config(config)
        self.relay = RelayDesk(pool.store, clock, config.web.public_url)

    def reload(self) -> None:
        rules, rewrite = load_stages(self.rules_dir), RewriteSettings.from_config(self.config)
        skills = load_skills(self.rules_dir)
        self.rules, self.rewrite, self.skills = rules, rewrite, skills

    def plan(self, mail: Mail) -> SentPlan:
        """What this sent mail will do, and why (pure but for reading the store)."""
        store = self.pool.store
        return plan_sent(mail, self.rewrite.rules, self.rules, self.pool.by_email,
                         lambda message_id: bool(store.find("outbox", "message_id", message_id)),
                         self.config.web.public_url,
                         self.config.rejection.invite_after_direct_send and self.outbox is not None,
                         self.skills)

    def handle(self, message: Incoming) -> None:
        mail = parse_mail(message.raw)
        if mail.unreadable:
            raise UnreadableMail(mail.unreadable)
        self.carry_out(self.plan(mail), mail, message)

    def carry_out(self, plan: SentPlan, mail: Mail, message: Incoming) -> None:
        if self.review is not None:
            self.review(message.raw, plan.decision, "sent")
        if plan.action == "stages" and plan.change is not None:
            change = plan.change
            at = iso(mail.date) if mail.date else self.pool.now()
            for candidate in plan.staged:
                self.pool.record_stage(candidate, change.stage, at, f"sent:{change.rule}",
                                       change.interviewer, change.rating, change.note)
                log.info("%s: candidate %s -> stage %s (%s)", message.ref, candidate["id"],
                         change.stage, change.rule)
        if plan.action == "stages":
            for candidate in plan.staged:
                for field, values, said in plan.corrections:
                    apply_hr(self.pool, candidate, field, values, said, "#mailflow line")
                    log.info("%s: candidate %s: %s set by a #mailflow line", message.ref,
                             candidate["id"], field)
        elif plan.action == "record" and plan.candidate is not None:
            note = plan.decision.note
            self.pool.record_rejection(plan.candidate, note.reason, note.stage, note.rescout,
                                       mail.message_id, iso(mail.date) if mail.date else None)
            log.info("%s: rejection sent without mailflow recorded on %s (rule %s)",
                     message.ref, plan.candidate["id"], plan.decision.rule)
        elif plan.action == "invite" and plan.candidate is not None:
            assert plan.decision.candidate is not None
            self._invite(message, mail, plan.candidate, plan.decision.candidate,
                         plan.decision.note)

    def _invite(self, message: Incoming, mail: Mail, candidate: Candidate, to: str,
                note: HrNote) -> None:
        invite = self.relay.issue(candidate, RejectionFacts(
            note.reason, note.stage, note.rescout, mail.message_id,
            iso(mail.date) if mail.date else None))
        applications = candidate.get("applications") or []
        context = InvitationContext(
            link=invite.link, company_name=self.rewrite.company_name,
            candidate_name=str(candidate.get("name") or ""),
            position=str(applications[-1].get("position", "") if applications else ""),
            consent_url=invite.consent_link)
        assert self.outbox is not None
        outbox = self.outbox
        record = outbox.queue(
            to=[to], purpose="relay-invitation", candidate_id=candidate["id"],
            build=lambda message_id: invitation_mail(
                self.rewrite, context, outbox.sender, to, invite.rejection_id,
                mail.message_id, self.clock.now(), message_id))
        log.info("%s: rejection sent without mailflow: candidate %s invited by a separate mail "
                 "(outbox %s)", message.ref, candidate["id"], record["id"])
