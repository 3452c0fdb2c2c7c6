"""The pipeline stage for the Sent folder: what HR sent moves candidates through the selection."""

from __future__ import annotations

import logging
from pathlib import Path

from mailflow.clock import iso
from mailflow.config import Config
from mailflow.parse import parse_mail
from mailflow.pipeline import Incoming
from mailflow.pool import TalentPool
from mailflow.stages import StageRules, load_stages, stage_change

log = logging.getLogger("mailflow.sent")


class SentMail:
    name = "sent-stages"
    roles = frozenset({"sent"})

    def __init__(self, pool: TalentPool, config: Config) -> None:
        self.pool = pool
        self.rules_dir: Path = config.rules_dir
        self.rules: StageRules = load_stages(self.rules_dir)

    def reload(self) -> None:
        self.rules = load_stages(self.rules_dir)

    def handle(self, message: Incoming) -> None:
        mail = parse_mail(message.raw)
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
