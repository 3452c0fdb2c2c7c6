"""Unsubscribe links in follow-up mail: `{public_url}/u/{token}` (RFC 8058 one-click).

A token is `secrets.token_urlsafe(24)`: random, no personal data. It is stored in the "tokens"
kind under the key `unsub:{token}` (a colon never occurs in a Career Relay token, so the two
kinds of link can never be taken for each other) with the candidate's id, the purpose the mail
served, and the follow-up it came with.

`confirm_page` answers a GET: it only shows a confirmation form and changes nothing (mail
scanners fetch every link). `opt_out` answers the one-click POST (`List-Unsubscribe=One-Click`)
or the form: the purpose is recorded as withdrawn on the candidate, with when and how, and every
planned follow-up of that candidate is cancelled. The web edge serves both (`mailflow/web/app.py`).
"""

from __future__ import annotations

import html
import logging
import re
import secrets
import threading

from mailflow.clock import Clock, iso
from mailflow.errors import MailflowError
from mailflow.followups.rows import cancel_planned
from mailflow.pool import consent
from mailflow.pool.records import Candidate
from mailflow.pool.talent import TalentPool
from mailflow.store.base import Doc, Store

log = logging.getLogger("mailflow.unsubscribe")

PREFIX = "unsub:"
TOKEN_BYTES = 24
ONE_CLICK = "one-click (RFC 8058)"
CONFIRMED = "confirmation page"
_TOKEN = re.compile(r"^[A-Za-z0-9_\-]{20,64}$")
PURPOSE_LABELS = {"rescout": "再スカウト・求人のご案内",
                  "career_relay": "キャリアリレー制度のご案内"}


class UnknownToken(MailflowError):
    """No such unsubscribe link (or its candidate was erased)."""


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"ja\"><head><meta charset=\"utf-8\">"
            "<meta name=\"robots\" content=\"noindex\">"
            f"<title>{html.escape(title)}</title></head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
            f"{body}\n</body></html>\n")


class Unsubscribes:
    def __init__(self, store: Store, clock: Clock, public_url: str,
                 lane: threading.RLock | None = None, company_name: str = "") -> None:
        self.store = store
        self.clock = clock
        self.public_url = public_url.rstrip("/")
        self.lane = lane or threading.RLock()
        self.company_name = company_name

    def issue(self, candidate_id: str, purpose: str, followup_id: str) -> str:
        """A new token for one mail (write it in the caller's transaction)."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        self.store.put("tokens", PREFIX + token, {
            "kind": "unsubscribe", "candidate_id": candidate_id, "purpose": purpose,
            "followup_id": followup_id, "issued_at": iso(self.clock.now())})
        return token

    def link(self, token: str) -> str:
        return f"{self.public_url}/u/{token}"

    def _lookup(self, token: str) -> tuple[Doc, Candidate]:
        """The unsubscribe token's document and its candidate (UnknownToken when either is
        missing)."""
        doc = self.store.get("tokens", PREFIX + token) if _TOKEN.match(token) else None
        pool = TalentPool(self.store, self.clock)
        candidate = pool.get(doc["candidate_id"]) if doc else None
        if doc is None or doc.get("kind") != "unsubscribe" or candidate is None:
            raise UnknownToken("unknown unsubscribe link")
        return doc, candidate

    def _label(self, purpose: str) -> str:
        return PURPOSE_LABELS.get(purpose, purpose)

    def confirm_page(self, token: str) -> str:
        """The page a GET shows; reads only."""
        doc, candidate = self._lookup(token)
        label = html.escape(self._label(doc["purpose"]))
        record = (candidate.get("consents") or {}).get(doc["purpose"])
        if record and record.get("state") == "withdrawn":
            return _page("配信停止済みです", f"<p>「{label}」のメールはすでに停止しています。</p>")
        sender = html.escape(self.company_name or "当社")
        return _page("配信停止の確認", (
            f"<p>{sender}からの「{label}」のメールを停止しますか。</p>\n"
            f"<form method=\"post\" action=\"/u/{html.escape(token)}\">"
            "<input type=\"hidden\" name=\"confirm\" value=\"yes\">"
            "<button type=\"submit\">配信を停止する</button></form>\n"
            "<p>このページを開いただけでは何も変更されません。</p>"))

    def opt_out(self, token: str, how: str) -> str:
        """Record the withdrawal and cancel every planned follow-up; the page to show."""
        now = iso(self.clock.now())
        with self.lane, self.store.transaction():
            doc, candidate = self._lookup(token)
            purpose = doc["purpose"]
            known = (candidate.get("consents") or {}).get(purpose)
            pool = TalentPool(self.store, self.clock)
            if not known or known.get("state") != "withdrawn":
                consent.record(candidate, purpose, False, now, f"unsubscribe link, {how}",
                               f"unsubscribe link of follow-up {doc.get('followup_id')}")
                pool.save(candidate)
                pool.event(candidate["id"], "consent_withdrawn", purpose=purpose, how=how,
                           followup_id=doc.get("followup_id"))
            cancelled = cancel_planned(self.store, candidate["id"],
                                       f"opted out of {purpose!r} ({how})", now)
        log.info("candidate %s: opted out of %s (%s); %d planned follow-ups cancelled",
                 candidate["id"], purpose, how, cancelled)
        label = html.escape(self._label(purpose))
        return _page("配信を停止しました",
                     f"<p>「{label}」のメールを停止しました。今後お送りすることはありません。</p>")

    @staticmethod
    def unknown_page() -> str:
        return _page("リンクが見つかりません",
                     "<p>このリンクは無効か、すでに使えなくなっています。</p>")
