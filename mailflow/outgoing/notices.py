"""Notices to HR: a short mail to the recruiting address, through the outbox."""

from __future__ import annotations

from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from mailflow.clock import Clock
from mailflow.mail.parse.headers import one_line
from mailflow.outgoing.outbox import Outbox
from mailflow.outgoing.records import OutboxItem
from mailflow.settings.config import Config


def notify_hr(outbox: Outbox, config: Config, clock: Clock, subject: str, body: str,
              candidate_id: str | None = None) -> OutboxItem | None:
    """Queue a notice to HR; None when no recruiting address is configured."""
    to = config.mailbox.address
    if not to:
        return None

    def build(message_id: str) -> bytes:
        message = EmailMessage()
        message["From"] = outbox.sender
        message["To"] = to
        message["Subject"] = one_line(f"【mailflow】{subject}")  # names stored before the door
        message["Date"] = format_datetime(clock.now())
        message["Message-ID"] = message_id
        message["Auto-Submitted"] = "auto-generated"  # never taken for an application
        message.set_content(body, charset="utf-8")
        return message.as_bytes()

    return outbox.queue(to=[to], purpose="notify-hr", candidate_id=candidate_id, build=build)


def reapplication_notice(candidate: Mapping[str, Any]) -> tuple[str, str]:
    """The notice to HR that a rejected candidate applied again (`candidate`: a
    `pool.records.Candidate`; outgoing reads it as a mapping, it may not use the pool)."""
    rejection = candidate.get("rejection") or {}
    position = candidate["applications"][-1]["position"] if candidate["applications"] else ""
    subject = f"再応募がありました: {candidate.get('name') or candidate['id']}"
    body = (f"以前に不採用となった候補者から、新しい応募がありました。\n\n"
            f"候補者: {candidate.get('name') or '(氏名不明)'} ({candidate['id']})\n"
            f"応募職種: {position or '-'}\n"
            f"前回の不採用: {rejection.get('at', '-')} 理由: {rejection.get('reason') or '-'}\n\n"
            f"詳細: mailflow candidate show {candidate['id']}\n")
    return subject, body
