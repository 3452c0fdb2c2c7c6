"""HR's attention for the rejections mailflow is unsure of, and the examples HR's word teaches.

After every decision on a draft, an outbox-folder or a Sent mail:

- ``uncertain`` (reads like a result notice, but neither clearly a rejection nor clearly not):
  the mail is left untouched and HR is told once, through the outbox, in Japanese, with the
  one line that settles it. "Once" is kept in the store (`reviews`, one per Message-ID, else per
  message key), so a restart or a re-fetch asks no second time.
- HR's `#mailflow rejection` / `#mailflow rejection=no` line: the case is recorded as a labelled
  example (`examples`, see `rejection.corrections`) and an open review is closed.

Logs name candidate ids and review ids only, never addresses or subjects.
"""

from __future__ import annotations

import logging
import secrets

from mailflow.clock import Clock, iso
from mailflow.mail.parse import parse_mail
from mailflow.mailbox.pipeline import message_key, raw_message_id
from mailflow.outgoing.notices import notify_hr
from mailflow.outgoing.outbox import Outbox
from mailflow.pool.records import Candidate, as_candidate
from mailflow.rejection.recognise import Decision, KnownCandidate, assess, read_outgoing
from mailflow.rejection.recognise.corrections import Label, example
from mailflow.settings.config import Config
from mailflow.store.base import Store

log = logging.getLogger("mailflow.reviews")

FOLDERS = {"drafts": "下書き", "outbox": "送信トレイ（mailflow の送信用フォルダ）",
           "sent": "送信済み"}
SETTLING = ("forbidden-by-marker", "marked-by-hr")


def review_notice(review_id: str, subject: str, decision: Decision, role: str) -> tuple[str, str]:
    """The Japanese notice to HR about one uncertain mail: what was seen, and how to settle it."""
    cues = ", ".join(dict.fromkeys(e.cue for e in decision.assessment.evidence)) \
        if decision.assessment else "-"
    where = FOLDERS.get(role, role)
    head = (f"{where}のメールが不採用通知かどうか、mailflow では判断できませんでした。\n"
            "メールには手を加えていません。\n\n"
            f"件名: {subject or '(件名なし)'}\n"
            f"フォルダ: {where}\n"
            f"判断の手がかり: {cues}\n"
            f"確認番号: {review_id}\n\n")
    if role == "sent":
        settle = ("このメールは送信済みのため、mailflow は何もしません。\n"
                  "次回からは、下書きの本文に次の一行を書くと確実に判断されます:\n"
                  "→ #mailflow rejection      （不採用通知です: Career Relay のご案内が入ります）\n"
                  "→ #mailflow rejection=no   （不採用通知ではありません）\n")
    else:
        settle = ("不採用通知であれば、本文に次の一行を書いて保存してください"
                  "（Career Relay のご案内が追加されます）:\n"
                  "→ #mailflow rejection\n"
                  "不採用通知でなければ、次の一行を書いてください（このままでも送信できます）:\n"
                  "→ #mailflow rejection=no\n")
    return "不採用通知か確認してください", head + settle + (
        "\n（→ の後ろの一行を、行の先頭から書いてください。#mailflow の行は mailflow が読み取り、"
        "送信前に取り除きます。）\n")


class ReviewDesk:
    """Asks HR about uncertain mails (once) and keeps HR's settled cases as examples."""

    def __init__(self, store: Store, clock: Clock, config: Config,
                 outbox: Outbox | None) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.outbox = outbox

    def saw(self, raw: bytes, decision: Decision, role: str, ask: bool = True) -> None:
        """React to the decision on ``raw`` found in the folder playing ``role`` (``ask``: HR
        may be asked; not for mailflow's own rewritten drafts, read again for corrections)."""
        key = raw_message_id(raw) or message_key(raw)
        if decision.rule in SETTLING:
            self._learn(raw, key, decision)
        elif decision.uncertain and ask:
            self._ask(raw, key, decision, role)

    def _candidate(self, email: str | None) -> Candidate | None:
        if not email:
            return None
        found = self.store.find("candidates", "emails", email)
        return as_candidate(found[0]) if found else None

    def _ask(self, raw: bytes, key: str, decision: Decision, role: str) -> None:
        if self.store.get("reviews", key) is not None:
            return  # HR was told about this mail before
        candidate = self._candidate(decision.candidate)
        review_id = secrets.token_hex(4)
        subject, body = review_notice(review_id, parse_mail(raw).subject, decision, role)
        record = notify_hr(self.outbox, self.config, self.clock, subject, body,
                           candidate["id"] if candidate else None) if self.outbox else None
        self.store.put("reviews", key, {
            "id": review_id, "key": key, "state": "asked", "folder": role,
            "candidate_id": candidate["id"] if candidate else None,
            "cues": sorted({e.cue for e in decision.assessment.evidence})
            if decision.assessment else [],
            "score": decision.assessment.score if decision.assessment else None,
            "outbox_id": record["id"] if record else None, "at": iso(self.clock.now())})
        log.warning("review %s: uncertain rejection in %s to candidate %s; HR asked (%s)",
                    review_id, role, candidate["id"] if candidate else "-",
                    f"outbox {record['id']}" if record else "no recruiting address to tell")

    def _learn(self, raw: bytes, key: str, decision: Decision) -> None:
        if self.store.get("examples", key) is not None:
            return
        label: Label = "rejection" if decision.rejection else "not_rejection"
        candidate = self._candidate(decision.candidate)
        names = [str(candidate.get("name") or "")] if candidate else []
        facts = read_outgoing(parse_mail(raw), lambda e: KnownCandidate.of(e, candidate)
                              if candidate and e == decision.candidate else None)
        assessment = assess(facts.subject, facts.body, facts.in_thread)
        doc = {"id": secrets.token_hex(4), "key": key, **example(
            label, facts.subject, facts.body, assessment, names), "at": iso(self.clock.now())}
        self.store.put("examples", key, doc)
        review = self.store.get("reviews", key)
        if review is not None and review.get("state") == "asked":
            self.store.put("reviews", key, {**review, "state": "settled", "label": label,
                                            "settled_at": doc["at"]})
        log.info("example %s: HR settled a mail as %s (the evidence said %s)", doc["id"], label,
                 assessment.verdict)
