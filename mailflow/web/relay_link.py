"""`GET /r/{token}`: the Career Relay link (302 to the configured registration page, or a
friendly 404), rate-limited per client."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mailflow.relay.clicks import SCANNER_NETWORKS, Click
from mailflow.relay.links import LinkDesk
from mailflow.store.base import Doc
from mailflow.web.commit import Batches
from mailflow.web.ratelimit import RateLimiter
from mailflow.web.readers import committed_reader

if TYPE_CHECKING:
    from mailflow.clock import Clock
    from mailflow.web.app import ASGIApp, Receive, Scope, Send
    from mailflow.web.host import Host
    from mailflow.web.metrics import Metrics

NOT_FOUND = """<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>リンクが見つかりません</title></head>
<body><h1>リンクが見つかりません</h1>
<p>このリンクは無効か、メールソフトやセキュリティ製品によって書き換えられた可能性があります。
お手数ですが、届いたメールのリンクをもう一度そのまま開いてください。</p>
<p>This link is not valid. Please open the link from the mail once more, exactly as sent.</p>
</body></html>
"""

TOO_MANY = """<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>しばらくお待ちください</title></head>
<body><p>アクセスが集中しています。少し時間をおいてからもう一度お試しください。</p></body></html>
"""


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def too_many() -> Response:
    return HTMLResponse(TOO_MANY, 429, headers={"Retry-After": "10"})


class PublicRateLimit:
    """ASGI middleware: per-client limits on the public pages (`/r/…` and `/f/…` links, `/u/…`
    unsubscribe, `/c/…` consent); 429 with Retry-After beyond them. Signed partner callbacks are
    not limited."""

    PREFIXES = ("/r/", "/f/", "/u/", "/c/")

    def __init__(self, app: ASGIApp, limiter: RateLimiter, clock: Clock) -> None:
        self.app = app
        self.limiter = limiter
        self.clock = clock  # the daemon's: a test's frozen clock refills no bucket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(self.PREFIXES):
            client = scope.get("client") or ("unknown", 0)
            if not self.limiter.allow(str(client[0]), self.clock.now().timestamp()):
                await too_many()(scope, receive, send)
                return
        await self.app(scope, receive, send)


def relay_routes(daemon: Host, metrics: Metrics) -> list[BaseRoute]:
    config = daemon.config
    desk = LinkDesk(daemon.store, daemon.clock, daemon.lane, config.career_relay.register_url,
                    config.career_relay.company_id,
                    (*SCANNER_NETWORKS, *config.web.scanner_networks),
                    reader=(reader := committed_reader(daemon.store)))
    clicks: Batches[Doc, bool] = Batches(desk.record_batch, lambda: False, lambda: False)

    async def follow(request: Request) -> Response:
        click = Click(
            method=request.method, user_agent=request.headers.get("user-agent", ""),
            client=client_of(request), at=daemon.clock.now(),
            accept_language=request.headers.get("accept-language", ""),
            has_cookie=bool(request.headers.get("cookie")))
        try:
            token = request.path_params["token"]
            # with a reader of its own, judging is a quick read of what is committed: on the
            # loop itself (a thread hop cost more than the read); else in a thread
            followed = (desk.judge(token, click) if reader is not None
                        else await asyncio.to_thread(desk.judge, token, click))
            if followed is not None:
                await clicks.submit(followed.record)  # answered once the click is durable
        except Exception:  # never a 5xx on the public link: a person sees the friendly page
            followed = None
        if followed is None:
            metrics.clicks.labels("unknown").inc()
            return HTMLResponse(NOT_FOUND, 404)
        metrics.clicks.labels(followed.verdict.kind).inc()
        return RedirectResponse(followed.location, 302)

    return [Route("/r/{token:path}", follow, methods=["GET", "HEAD"])]
