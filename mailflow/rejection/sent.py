"""The pipeline stage for the Sent folder: what HR sent moves candidates through the selection,
and a rejection HR sent without mailflow is recorded (and, when configured, followed by a short
separate invitation through the outbox)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from mailflow.clock import Clock, iso
from mailflow.intake.stages import StageRules, load_stages, stage_change
from mailflow.mail.parse import Mail, parse_mail
from mailflow.mail.rewrite.render import InvitationContext, is_already_invited
from mailflow.mailbox.pipeline import Incoming
from mailflow.outgoing.outbox import Outbox
from mailflow.pool.talent import TalentPool
from mailflow.rejection.invitation_mail import invitation_mail
from mailflow.rejection.recognise import Decision, HrNote, decide
from mailflow.rejection.rewriting import HEADER, RewriteSettings
from mailflow.relay.desk import RejectionFacts, RelayDesk
from mailflow.settings.config import Config
from mailflow.store.base import Doc

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
        self.rewrite = RewriteSettings.from_config(config)
        self.relay = RelayDesk(pool.store, clock, config.web.public_url)

    def reload(self) -> None:
        rules, rewrite = load_stages(self.rules_dir), RewriteSettings.from_config(self.config)
        self.rules, self.rewrite = rules, rewrite

    def handle(self, message: Incoming) -> None:
        mail = parse_mail(message.raw)
        if not self._rejection(message, mail):  # a rejection is not a step forward
            self._stages(message, mail)

    def _stages(self, message: Incoming, mail: Mail) -> None:
        change = stage_change(mail, self.rules)
        if change is None:
            return
        at = iso(mail.date) if mail.date else self.pool.now()
        for address in (*mail.to, *mail.cc):
            candidate = self.pool.by_email(address.email)
            if candidate is None:
                continue
            self.pool.record_stage(candidate, change.stage, at, f"sent:{change.rule}",
                                   change.interviewer, change.rating, change.note)
            log.info("%s: candidate %s -> stage %s (%s)", message.ref, candidate["id"],
                     change.stage, change.rule)

    def _rejection(self, message: Incoming, mail: Mail) -> bool:
        """A rejection HR sent directly (no invitation from mailflow in it) is recorded and,
        when configured, followed by an invitation. True when the mail is a rejection."""
        decision = decide(mail, self.rewrite.rules, self.pool.by_email)
        if self.review is not None:
            self.review(message.raw, decision, "sent")
        if not decision.rejection:
            return False
        if mail.message_id and self.pool.store.find("outbox", "message_id", mail.message_id):
            return True  # mailflow sent it (and filed this copy): not HR's own
        if mail.header(HEADER) is not None or is_already_invited(
                mail.text, mail.html, self.config.web.public_url):
            return True
        if not decision.candidate:
            return True
        candidate = self.pool.by_email(decision.candidate)
        if candidate is None or (candidate.get("rejection") or {}).get(
                "message_id") == mail.message_id:
            return True
        note = decision.note
        if not (self.config.rejection.invite_after_direct_send and self.outbox):
            self.pool.record_rejection(candidate, note.reason, note.stage, note.rescout,
                                       mail.message_id, iso(mail.date) if mail.date else None)
            log.info("%s: rejection sent without mailflow recorded on %s (rule %s)",
                     message.ref, candidate["id"], decision.rule)
            return True
        self._invite(message, mail, candidate, decision.candidate, note)
        return True

    def _invite(self, message: Incoming, mail: Mail, candidate: Doc, to: str,
                note: HrNote) -> None:
        invite = self.relay.issue(candidate, RejectionFacts(
            note.reason, note.stage, note.rescout, mail.message_id,
            iso(mail.date) if mail.date else None))
        applications = candidate.get("applications") or []
        context = InvitationContext(
            link=invite.link, company_name=self.rewrite.company_name,
            candidate_name=str(candidate.get("name") or ""),
            position=str(applications[-1].get("position", "") if applications else ""))
        assert self.outbox is not None
        outbox = self.outbox
        record = outbox.queue(
            to=[to], purpose="relay-invitation", candidate_id=candidate["id"],
            build=lambda message_id: invitation_mail(
                self.rewrite, context, outbox.sender, to, invite.rejection_id,
                mail.message_id, self.clock.now(), message_id))
        log.info("%s: rejection sent without mailflow: candidate %s invited by a separate mail "
                 "(outbox %s)", message.ref, candidate["id"], record["id"])
