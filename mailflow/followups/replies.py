"""A reply stops the sequence: a candidate's answer to a follow-up mail (found by its
In-Reply-To/References in the outbox) cancels their planned follow-ups and tells HR.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from mailflow.clock import Clock, iso
from mailflow.followups.rows import cancel_planned
from mailflow.outgoing.notices import notify_hr
from mailflow.outgoing.outbox import Outbox
from mailflow.outgoing.records import as_outbox_item
from mailflow.pool.records import Candidate
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import Config
from mailflow.store.base import Store

log = logging.getLogger("mailflow.followups")


def stop_on_reply(store: Store, clock: Clock, config: Config, outbox: Outbox | None,
                  candidate: Candidate, thread: Iterable[str]) -> bool:
    """A candidate's reply to a follow-up (In-Reply-To/References) stops their sequence and
    tells HR. False when the mail does not answer a follow-up."""
    answered = next((record for message_id in thread
                     for record in map(as_outbox_item,
                                       store.find("outbox", "message_id", message_id))
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
                   outbox: Outbox | None) -> Callable[[Candidate, list[str]], None]:
    """The follow-ups' subscriber to intake's replies (`intake.applications.ReplyListener`)."""
    def heard(candidate: Candidate, thread: list[str]) -> None:
        stop_on_reply(store, clock, config, outbox, candidate, thread)

    return heard
