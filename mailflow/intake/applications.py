"""The pipeline stage for INBOX: a candidate's reply in a known thread is recorded on them; an
application becomes (or merges into) a candidate; everything else is logged with its rule."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from mailflow.clock import iso
from mailflow.intake.authorship import company_wrote
from mailflow.intake.classify import Mailbox, classify_inbound
from mailflow.intake.documents import DocumentShelf
from mailflow.intake.sources import SourceRules, load_sources
from mailflow.intake.stages import marker_fields
from mailflow.mail.parse import Mail, parse_mail
from mailflow.mailbox.pipeline import Incoming
from mailflow.outgoing.notices import notify_hr, reapplication_notice
from mailflow.outgoing.outbox import Outbox
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import Config
from mailflow.store.base import Doc

log = logging.getLogger("mailflow.intake")

# Told of a candidate's reply in their thread: the candidate, and the thread's Message-IDs.
ReplyListener = Callable[[Doc, list[str]], None]


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
        self.mailbox = Mailbox(config.mailbox.address, tuple(config.company.domains))
        self.shelf = DocumentShelf(config.data_dir, config.store.keep_attachments)

    def reload(self) -> None:
        self.rules = load_sources(self.rules_dir)  # raises on a broken file: old rules stay

    def handle(self, message: Incoming) -> None:
        mail = parse_mail(message.raw)
        thread = [i for i in (mail.in_reply_to, *mail.references) if i]
        known = self.pool.by_thread(thread) if thread else None
        if known is not None:
            self.pool.reply(known, mail.message_id)
            log.info("%s: reply in the thread of candidate %s", message.ref, known["id"])
            for listener in self.on_reply:
                listener(known, thread)
            self._markers(mail, known)
            return
        decision = classify_inbound(mail, self.rules, self.mailbox)
        if decision.applicant is None:
            log.info("%s: not an application (%s: %s)", message.ref, decision.rule,
                     decision.reason)
            return
        applied_at = iso(mail.date) if mail.date else None
        before, _why = self.pool.match(decision.applicant)
        candidate, created = self.pool.apply(decision.applicant, mail.message_id, applied_at)
        if before is not None and before["status"] == "rejected" and self.outbox is not None:
            subject, body = reapplication_notice(candidate)
            notify_hr(self.outbox, self.config, self.pool.clock, subject, body, candidate["id"])
        log.info("%s: application via %s -> %s candidate %s", message.ref, decision.rule,
                 "new" if created else "existing", candidate["id"])
        documents = [self.shelf.keep(a, mail.message_id, self.pool.now())
                     for a in mail.attachments if not a.inline]
        if documents:
            self.pool.add_documents(candidate, documents)
        self._markers(mail, candidate)

    def _markers(self, mail: Mail, candidate: Doc) -> None:
        """A `#mailflow stage=…` line is recorded when the company wrote the mail: From the
        company and confirmed by the receiving server (`authorship`). Anything else is the
        candidate's mail, and the attempt is logged: an applicant cannot set their own stage."""
        fields = marker_fields(mail)
        if not fields.get("stage"):
            return
        box = self.config.mailbox
        said = company_wrote(mail, "inbox", box.address, self.config.company.domains,
                             box.trusted_authserv_ids)
        if not said.company:
            if said.why != "not From the company":
                log.warning("candidate %s: a #mailflow stage line in INBOX ignored: %s",
                            candidate["id"], said.why)
            return
        at = iso(mail.date) if mail.date else self.pool.now()
        self.pool.record_stage(candidate, fields["stage"], at, "#mailflow line",
                               fields.get("interviewer", ""), fields.get("rating", ""),
                               fields.get("note", ""))
