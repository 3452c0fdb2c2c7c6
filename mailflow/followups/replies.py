"""A reply stops the sequence: a candidate's answer to a follow-up mail (found by its
In-Reply-To/References in the outbox) cancels their planned follow-ups and tells HR.

A reply keyword withdraws consent: a candidate's reply in their thread whose own text (above
any quoted mail) or subject says 「配信停止」, 「配信不要」 or 「連絡不要」 (`STOP_WORDS`; also
「ご連絡は不要です」) records `rescout` and `newsletter` (`WITHDRAWN_BY_WORD`, those the config
declares) as withdrawn, with the reply's Message-ID as evidence. A reply never grants anything:
a From line can be forged, and a forged withdrawal only means less mail.

A reply keyword records the candidate's re-application intent (`pool.intent`): 「希望しない」
(「希望しません」 …) in their own text records that they do not wish to hear about future
openings, 「希望する」 (「希望します」 …) that they do, with the reply's Message-ID as evidence.
The wish is not consent: it opens no purpose of use (a forged reply sends no mail by itself).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable

from mailflow.clock import Clock, iso
from mailflow.followups.rows import cancel_planned
from mailflow.mail.parse import Mail
from mailflow.mail.parse.html_text import html_to_text
from mailflow.mail.rewrite.quotes import html_quote_start, own_plain
from mailflow.outgoing.notices import notify_hr
from mailflow.outgoing.outbox import Outbox
from mailflow.outgoing.records import as_outbox_item
from mailflow.pool import consent
from mailflow.pool.intent import REPLY, record_intent
from mailflow.pool.records import Candidate
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import Config
from mailflow.store.base import Store

log = logging.getLogger("mailflow.followups")

STOP_WORDS = re.compile(r"配信[のは]?停止|配信[はも]?不要|連絡[はも]?不要")  # 今後のご連絡は不要 …
WITHDRAWN_BY_WORD = ("rescout", "newsletter")
INTENT_NO = re.compile(r"希望(?:しない|しません|いたしません|致しません)")
INTENT_YES = re.compile(r"希望(?:する|します|いたします|致します)")


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


def _own_text(mail: Mail) -> str:
    """What the candidate wrote above any quoted mail."""
    if mail.text:
        return own_plain(mail.text)
    return own_plain(html_to_text(mail.html[:html_quote_start(mail.html)]))


def _squeezed(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def stop_word(mail: Mail) -> str | None:
    """The stop word the candidate wrote in the subject or above any quoted mail, if any."""
    found = STOP_WORDS.search(_squeezed(f"{mail.subject}\n{_own_text(mail)}"))
    return found.group(0) if found else None


def intent_word(mail: Mail) -> tuple[bool, str] | None:
    """The candidate's wish as their own text says it (not the subject, which repeats ours):
    (wish, the words), 「希望しない」 winning over 「希望する」; None when it says neither."""
    said = _squeezed(_own_text(mail))
    found = INTENT_NO.search(said)
    if found:
        return False, found.group(0)
    found = INTENT_YES.search(said)
    return (True, found.group(0)) if found else None


def intent_on_word(store: Store, clock: Clock, candidate: Candidate, mail: Mail) -> bool | None:
    """A reply saying 「希望する」 or 「希望しない」 records the re-application intent; the wish
    recorded (None: the reply says neither)."""
    word = intent_word(mail)
    if word is None:
        return None
    wish, words = word
    pool = TalentPool(store, clock)
    with store.transaction():
        current = pool.get(candidate["id"]) or candidate
        done = record_intent(pool, current, wish, REPLY,
                             f"reply {mail.message_id or '(no Message-ID)'}: {words}")
    if done is not None:
        candidate.update(current)
        log.info("candidate %s: a reply said %s: re-application intent %s", candidate["id"],
                 words, "yes" if wish else "no")
    return wish


def withdraw_on_word(store: Store, clock: Clock, config: Config, candidate: Candidate,
                     mail: Mail) -> list[str]:
    """A reply with a stop word withdraws `WITHDRAWN_BY_WORD`; the purposes it withdrew."""
    word = stop_word(mail)
    if word is None:
        return []
    evidence = f"reply {mail.message_id or '(no Message-ID)'}: {word}"
    pool = TalentPool(store, clock)
    with store.transaction():
        current = pool.get(candidate["id"]) or candidate
        purposes = [p for p in WITHDRAWN_BY_WORD if p in config.privacy.purposes
                    and not _withdrawn(current, p)]
        for purpose in purposes:
            pool.consent_change(current, purpose, False, consent.REPLY, evidence)
    if purposes:
        candidate.update(current)
        log.info("candidate %s: a reply said %s: %s withdrawn", candidate["id"], word,
                 ", ".join(purposes))
    return purposes


def _withdrawn(candidate: Candidate, purpose: str) -> bool:
    said = consent.explicit(candidate, purpose)
    return said is not None and said["state"] == "withdrawn"


def reply_listener(store: Store, clock: Clock, config: Config,
                   outbox: Outbox | None) -> Callable[[Candidate, list[str], Mail], None]:
    """The follow-ups' subscriber to intake's replies (`intake.applications.ReplyListener`):
    a stop word withdraws consent, 「希望する」/「希望しない」 records the re-application intent;
    a reply to a follow-up stops the sequence."""
    def heard(candidate: Candidate, thread: list[str], mail: Mail) -> None:
        withdraw_on_word(store, clock, config, candidate, mail)
        intent_on_word(store, clock, candidate, mail)
        stop_on_reply(store, clock, config, outbox, candidate, thread)

    return heard
