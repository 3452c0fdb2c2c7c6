"""The pipeline stage for INBOX: a candidate's reply in a known thread is recorded on them; an
application becomes (or merges into) a candidate; everything else is logged with its rule."""

from __future__ import annotations

import logging
from pathlib import Path

from mailflow.classify import Mailbox, classify_inbound
from mailflow.clock import iso
from mailflow.config import Config
from mailflow.parse import parse_mail
from mailflow.pipeline import Incoming
from mailflow.pool import TalentPool
from mailflow.sources import SourceRules, load_sources

log = logging.getLogger("mailflow.intake")


class Applications:
    name = "applications"
    roles = frozenset({"inbox"})

    def __init__(self, pool: TalentPool, config: Config) -> None:
        self.pool = pool
        self.rules_dir: Path = config.rules_dir
        self.rules: SourceRules = load_sources(self.rules_dir)
        self.mailbox = Mailbox(config.mailbox.address, tuple(config.company.domains))

    def reload(self) -> None:
        self.rules = load_sources(self.rules_dir)  # raises on a broken file: old rules stay

    def handle(self, message: Incoming) -> None:
        mail = parse_mail(message.raw)
        thread = [i for i in (mail.in_reply_to, *mail.references) if i]
        known = self.pool.by_thread(thread) if thread else None
        if known is not None:
            self.pool.reply(known, mail.message_id)
            log.info("%s: reply in the thread of candidate %s", message.ref, known["id"])
            return
        decision = classify_inbound(mail, self.rules, self.mailbox)
        if decision.applicant is None:
            log.info("%s: not an application (%s: %s)", message.ref, decision.rule,
                     decision.reason)
            return
        applied_at = iso(mail.date) if mail.date else None
        candidate, created = self.pool.apply(decision.applicant, mail.message_id, applied_at)
        log.info("%s: application via %s -> %s candidate %s", message.ref, decision.rule,
                 "new" if created else "existing", candidate["id"])
