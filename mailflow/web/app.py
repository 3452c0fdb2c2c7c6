"""The Starlette app of the web edge: only the routes INTERFACE.md lists (everything else 404);
the candidate's consent page (`GET/POST /c/{token}`) is in `consent_page.py`, the admin pages
(`/admin/…`, mounted here) in `admin/`.

`build_app(daemon)` assembles it: `routes(edge)` is the list of routes (add a route there), and
two small ASGI middlewares wrap every response: `SecurityHeaders` and `BodyLimit` (413 over
`[web] max_body_bytes`, announced by Content-Length or found while reading). A response that
sets its own Content-Security-Policy keeps it (the admin pages allow their own stylesheet and
forms); every other header of the list is always the list's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from mailflow.followups.unsubscribe import CONFIRMED, ONE_CLICK, UnknownToken
from mailflow.relay.callbacks import SIGNATURE_HEADER, CareerRelayCallbacks, Refused
from mailflow.relay.ledger import ReferralLedger
from mailflow.web.admin import admin_app
from mailflow.web.commit import GroupCommit
from mailflow.web.consent_page import consent_routes
from mailflow.web.openapi import openapi

if TYPE_CHECKING:
    from mailflow.web.host import Host

log = logging.getLogger("mailflow.web")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


@dataclass
class Edge:
    """What the routes need from the daemon."""

    daemon: Host
    callbacks: CareerRelayCallbacks
    commits: GroupCommit
    alerts: list[Callable[[], str]] = field(default_factory=list)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status)


# -- routes ---------------------------------------------------------------------------------------


def routes(edge: Edge) -> list[BaseRoute]:
    async def career_relay(request: Request) -> Response:
        body = await request.body()  # the raw bytes, read once, within the size limit
        try:
            event = edge.callbacks.check(request.headers.get(SIGNATURE_HEADER), body)
        except Refused as refused:
            log.warning("callback refused (%d): %s", refused.status, refused.reason)
            return error(refused.status, refused.reason)
        answer = await edge.commits.submit(event)
        return JSONResponse(answer.body, answer.status)

    async def healthz(request: Request) -> Response:
        health = edge.daemon.health
        reasons = list(health.reasons) + [a for a in (alert() for alert in edge.alerts) if a]
        if health.healthy and not reasons:
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unhealthy", "reasons": reasons}, 503)

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(openapi(edge.daemon.config.web.public_url))

    async def unsubscribe(request: Request) -> Response:
        """GET (and HEAD) only show the confirmation page; POST opts out (RFC 8058)."""
        desk, token = edge.daemon.followups.unsubscribes, request.path_params["token"]
        try:
            if request.method != "POST":
                return HTMLResponse(await run_in_threadpool(desk.confirm_page, token))
            how = ONE_CLICK if b"List-Unsubscribe=One-Click" in await request.body() \
                else CONFIRMED
            return HTMLResponse(await run_in_threadpool(desk.opt_out, token, how))
        except UnknownToken:
            return HTMLResponse(desk.unknown_page(), 404)

    return [
        Route("/callbacks/career-relay", career_relay, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/u/{token}", unsubscribe, methods=["GET"]),
        Route("/u/{token}", unsubscribe, methods=["POST"]),
    ]


# -- middleware -----------------------------------------------------------------------------------


class SecurityHeaders:
    """Adds the security headers to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                own = [(n, v) for n, v in message.get("headers", [])
                       if n.lower() == b"content-security-policy"]
                names = {name for name, _value in SECURITY_HEADERS}
                message["headers"] = [(n, v) for n, v in message.get("headers", [])
                                      if n.lower() not in names] + own + [
                    (n, v) for n, v in SECURITY_HEADERS
                    if not (own and n == b"content-security-policy")]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """413 for a body over `limit` bytes: at once when Content-Length says so, else as soon as
    the bytes read pass it (the endpoint's `request.body()` raises, the handler answers 413)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await too_large(scope, receive, send)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge()
            return message

        await self.app(scope, counted, send)


async def too_large(scope: Scope, receive: Receive, send: Send) -> None:
    await error(413, "request body too large")(scope, receive, send)


async def _too_large_handler(request: Request, exc: Exception) -> Response:
    return error(413, "request body too large")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "not found" if exc.status_code == 404 else str(exc.detail).lower()
    return JSONResponse({"ok": False, "error": message}, exc.status_code, exc.headers)


def build_app(daemon: Host, extra: list[BaseRoute] | None = None) -> Starlette:
    """The app for `daemon`: `app.state.edge` holds the callbacks desk and its group commit."""
    ledger: ReferralLedger = daemon.ledger
    callbacks = CareerRelayCallbacks(daemon.store, daemon.clock, daemon.config, ledger,
                                     daemon.lane)
    edge = Edge(daemon, callbacks, GroupCommit(callbacks.record_batch),
                [lambda: callbacks.alert])
    app = Starlette(
        routes=[*routes(edge), *consent_routes(daemon), Mount("/admin", app=admin_app(daemon)),
                *(extra or [])],
        middleware=[Middleware(SecurityHeaders),
                    Middleware(BodyLimit, limit=daemon.config.web.max_body_bytes)],
        exception_handlers={BodyTooLarge: _too_large_handler, HTTPException: _http_error},
    )
    app.state.edge = edge
    return app
