"""`GET/POST /c/{token}`: the candidate's consent page (APPI 法18, 27: consent the person gives).

The token is the candidate's consent token (`pool.consent_links`: random, no personal data).
GET (and HEAD) only shows the page and changes nothing: mail scanners fetch every link. POST
changes: each purpose shown on the form whose box differs from what holds now is recorded as
granted or withdrawn (`TalentPool.consent_change`: when, how "consent page", evidence the
request id), an event on the timeline each; a choice of the re-application question
(`intent` = yes|no) that differs from the wish recorded is recorded as the candidate's
`reapply_intent` (`pool.intent`: how "consent page", evidence the request id).

A POST is taken only with the form's CSRF token — `<t>.<nonce>.<hex HMAC-SHA256>` over the
consent token, `t` and the nonce, keyed from the relay secret (a per-process random key when
none is set), minted anew for every render and good for `CSRF_SECONDS` — and only when the
browser does not say the request comes from another site (`Sec-Fetch-Site: cross-site`, or an
`Origin` other than `[web] public_url`'s; the page is served with `Referrer-Policy:
no-referrer`, under which browsers send `Origin: null`, so that is accepted). Anything else is
`403`, changing nothing. The page is rate-limited per client like `/u/…`
(`web.relay_link.PublicRateLimit`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from mailflow.clock import iso
from mailflow.errors import MailflowError
from mailflow.pool import consent
from mailflow.pool.consent_links import candidate_of, consent_link
from mailflow.pool.intent import PAGE, record_intent
from mailflow.pool.records import Candidate
from mailflow.pool.talent import TalentPool
from mailflow.web.consent_html import (
    TEXTS,
    PurposeState,
    consent_page,
    expired_page,
    language,
    unknown_page,
)

if TYPE_CHECKING:
    from mailflow.web.host import Host

log = logging.getLogger("mailflow.consent")

CSRF_SECONDS = 2 * 3600
INTENT = "reapply_intent"  # the re-application question's `Changed`
_PROCESS_KEY = secrets.token_bytes(32)


class UnknownConsentToken(MailflowError):
    """No such consent page (or its candidate was erased)."""


# -- the CSRF token (pure) --------------------------------------------------------------------


def csrf_token(key: bytes, token: str, now: int, nonce: str | None = None) -> str:
    nonce = nonce or secrets.token_urlsafe(12)
    mac = hmac.new(key, f"consent|{token}|{now}|{nonce}".encode(), hashlib.sha256).hexdigest()
    return f"{now}.{nonce}.{mac}"


def csrf_valid(key: bytes, token: str, value: str, now: int) -> bool:
    """Minted for this consent token with this key, less than `CSRF_SECONDS` ago."""
    stamp, _, rest = value.partition(".")
    nonce, _, _mac = rest.partition(".")
    if not stamp.isdigit() or not nonce or not 0 <= now - int(stamp) <= CSRF_SECONDS:
        return False
    return hmac.compare_digest(csrf_token(key, token, int(stamp), nonce), value)


def same_site(origin: str | None, fetch_site: str | None, public_url: str) -> bool:
    """The browser does not say the POST comes from another site."""
    if fetch_site == "cross-site":
        return False
    parts = urlsplit(public_url)
    return origin in (None, "", "null") or origin == f"{parts.scheme}://{parts.netloc}"


# -- the page ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Changed:
    purpose: str
    granted: bool


class ConsentPage:
    def __init__(self, daemon: Host) -> None:
        self.daemon = daemon
        self.config = daemon.config
        self.notified = frozenset(daemon.config.privacy.notified_purposes)
        self.pool = TalentPool(daemon.store, daemon.clock)

    def key(self) -> bytes:
        try:
            secret = self.config.secret("career_relay.secret_env").encode("utf-8")
        except MailflowError:
            return _PROCESS_KEY
        return hmac.new(secret, b"mailflow consent page", hashlib.sha256).digest()

    def now(self) -> int:
        return int(self.daemon.clock.now().timestamp())

    def _candidate(self, token: str) -> Candidate:
        candidate_id = candidate_of(self.daemon.store, token)
        candidate = self.pool.get(candidate_id) if candidate_id else None
        if candidate is None:
            raise UnknownConsentToken("unknown consent page")
        return candidate

    def states(self, candidate: Candidate) -> list[PurposeState]:
        found = []
        for name in self.config.privacy.purposes:
            said = consent.explicit(candidate, name)
            held = consent.state(candidate, name, self.notified).holds
            basis = said["state"] if said else ("notified" if name in self.notified else "none")
            found.append(PurposeState(name, held, basis, said["at"] if said else ""))
        return found

    def show(self, token: str, lang: str, notice: str = "") -> str:
        """The page a GET shows; reads only."""
        candidate = self._candidate(token)
        action = f"{consent_link(self.config.web.public_url, token)}?lang={lang}"
        intent = candidate.get("reapply_intent")
        return consent_page(lang, self.config.company.name, action,
                            csrf_token(self.key(), token, self.now()),
                            self.config.privacy.purposes, self.states(candidate), notice,
                            intent["wish"] if intent else None)

    def change(self, token: str, shown: list[str], ticked: list[str],
               intent: str | None = None) -> list[Changed]:
        """Record each shown purpose whose box differs from what holds now, and the answer to
        the re-application question (`intent` "yes" | "no") when it differs from the wish
        recorded (a `Changed` named "reapply_intent")."""
        request_id = "rq_" + secrets.token_hex(6)
        changed: list[Changed] = []
        with self.daemon.lane, self.daemon.store.transaction():
            candidate = self._candidate(token)
            stamp = iso(self.daemon.clock.now())
            for name in dict.fromkeys(shown):
                if name not in self.config.privacy.purposes:
                    continue
                want = name in ticked
                if consent.state(candidate, name, self.notified).holds != want:
                    self.pool.consent_change(candidate, name, want, consent.PAGE,
                                             f"request {request_id} at {stamp}")
                    changed.append(Changed(name, want))
            if intent in ("yes", "no") and record_intent(
                    self.pool, candidate, intent == "yes", PAGE,
                    f"request {request_id} at {stamp}") is not None:
                changed.append(Changed(INTENT, intent == "yes"))
        if changed:
            log.info("consent page %s: candidate %s: %s", request_id, candidate["id"],
                     ", ".join(f"{c.purpose} {'yes' if c.granted else 'no'}"
                               if c.purpose == INTENT else
                               f"{c.purpose} {'granted' if c.granted else 'withdrawn'}"
                               for c in changed))
        return changed


def consent_routes(daemon: Host) -> list[BaseRoute]:
    page = ConsentPage(daemon)

    async def consent_page_route(request: Request) -> Response:
        token = request.path_params["token"]
        lang = language(request.query_params.get("lang"))
        try:
            if request.method != "POST":
                return HTMLResponse(await run_in_threadpool(page.show, token, lang))
            form = parse_qs((await request.body()).decode("utf-8", "replace"),
                            keep_blank_values=True)
            csrf = (form.get("csrf") or [""])[0]
            if not (same_site(request.headers.get("origin"),
                              request.headers.get("sec-fetch-site"),
                              daemon.config.web.public_url)
                    and csrf_valid(page.key(), token, csrf, page.now())):
                await run_in_threadpool(page.show, token, lang)  # unknown token: 404 first
                log.warning("consent page: a POST without a valid CSRF token refused")
                return HTMLResponse(expired_page(lang), 403)
            changed = await run_in_threadpool(page.change, token, form.get("shown", []),
                                              form.get("consent", []),
                                              (form.get("intent") or [""])[0])
            notice = TEXTS[lang]["saved" if changed else "unchanged"]
            return HTMLResponse(await run_in_threadpool(page.show, token, lang, notice))
        except UnknownConsentToken:
            return HTMLResponse(unknown_page(lang), 404)

    return [Route("/c/{token}", consent_page_route, methods=["GET", "POST"])]
