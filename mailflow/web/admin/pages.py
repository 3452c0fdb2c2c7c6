"""The admin pages' routes (mounted at `/admin` by `web.app.build_app`), each a small handler:
read what the page shows (`views`), render it (`templates/`, autoescaped), or carry out an
admin's decision through the daemon's own handlers (`Host.carry_out`: the same ones the control
channel runs for the CLI) and write it to the audit log (actor `admin:token`).

Every route but the login page and the stylesheet needs a live session (`auth`), else it
redirects to the login (303); every POST needs the session's CSRF token, else 403 and nothing
changes. A POST that changes something answers with a redirect (post/redirect/get) and the
outcome shown once on the next page. The talent pool's search is a POST form, so that a name or
an address never stands in a URL, a log line or a browser's history.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mailflow.errors import MailflowError
from mailflow.pool import audit
from mailflow.web.admin import views
from mailflow.web.admin.auth import (
    FailedLogins,
    Sessions,
    admin_token,
    client_of,
    csrf_of,
    csrf_ok,
    token_matches,
)
from mailflow.web.admin.chart import layout
from mailflow.web.admin.texts import language, translator
from mailflow.web.public_path import public_path

if TYPE_CHECKING:
    from mailflow.web.host import Host

log = logging.getLogger("mailflow.admin")

ACTOR = "admin:token"
PREFIX = "/admin"
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
NAV = ("overview", "pool", "ledger", "followups", "outbox", "quarantine", "rules")
PATHS = {"overview": "/", "pool": "/pool", "ledger": "/ledger", "followups": "/followups",
         "outbox": "/outbox", "quarantine": "/quarantine", "rules": "/rules"}
Handler = Callable[[Request], Awaitable[Response]]

templates = Environment(loader=PackageLoader("mailflow.web.admin", "templates"),
                        autoescape=True, trim_blocks=True, lstrip_blocks=True)
STYLE = files("mailflow.web.admin").joinpath("static/admin.css").read_bytes()


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


class AdminPages:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.prefix = public_path(host.config.web.public_url) + PREFIX  # as the browser sees it
        self.sessions = Sessions(host.clock)
        self.failures = FailedLogins(host.clock)

    # -- rendering and guarding -------------------------------------------------------------

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        lang = language(request)
        html = templates.get_template(f"{name}.html").render(
            t=translator(lang), lang=lang, csrf=csrf_of(request), prefix=self.prefix, nav=NAV,
            paths=PATHS, page=name, flash=request.session.pop("flash", None),
            logged_in=self.sessions.alive(request.session.get("sid")) if name != "login"
            else False, **context)
        return HTMLResponse(html, status, headers={"content-security-policy": CSP})

    def guarded(self, handler: Handler) -> Handler:
        async def guard(request: Request) -> Response:
            if not self.sessions.alive(request.session.get("sid")):
                return RedirectResponse(f"{self.prefix}/login", 303)
            if request.method == "POST" and not await csrf_ok(request):
                return self.render(request, "refused", 403)
            return await handler(request)

        return guard

    def record(self, action: str, target: str = "", **detail: Any) -> None:
        with self.host.lane:
            audit.record(self.host.store, self.host.clock, ACTOR, action, target, detail)

    # -- logging in and out -----------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        return self._login(request)

    def _login(self, request: Request, problem: str = "", status: int = 200) -> Response:
        env = self.host.config.web.admin_token_env
        off = not admin_token(self.host.config)
        return self.render(request, "login", status, env=env, off=off, problem=problem)

    async def login(self, request: Request) -> Response:
        if not await csrf_ok(request):
            return self.render(request, "refused", 403)
        client = client_of(request)
        if self.failures.limited(client):
            return self._login(request, "login_limited", 429)
        given = (await request.form()).get("token")
        if not token_matches(admin_token(self.host.config), given if isinstance(given, str)
                             else ""):
            self.failures.failed(client)
            log.warning("admin: a login was refused (from %s)", client)
            return self._login(request, "login_refused", 401)
        lang = request.session.get("lang")
        request.session.clear()
        request.session.update(sid=self.sessions.open(), **({"lang": lang} if lang else {}))
        csrf_of(request)  # a new CSRF token with the new session
        await run_in_threadpool(self.record, "admin-login")
        return RedirectResponse(f"{self.prefix}/", 303)

    async def logout(self, request: Request) -> Response:
        self.sessions.close(request.session.get("sid"))
        request.session.clear()
        await run_in_threadpool(self.record, "admin-logout")
        return RedirectResponse(f"{self.prefix}/login", 303)

    async def style(self, request: Request) -> Response:
        return Response(STYLE, media_type="text/css", headers={"cache-control": "max-age=3600"})

    # -- pages ------------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        start = _date(request.query_params.get("from"))
        end = _date(request.query_params.get("to"))
        h = self.host
        report = await run_in_threadpool(views.kpis, h.store, h.config, h.clock, start, end)
        rows = views.months_with_figures(report.get("by_month") or [])
        return self.render(request, "overview", report=report, tiles=views.TILES,
                           chart=layout(rows[-views.CHART_MONTHS:]) if rows else None,
                           start=start.isoformat() if start else "",
                           end=end.isoformat() if end else "")

    async def pool(self, request: Request) -> Response:
        filters = views.Filters()
        if request.method == "POST":
            filters = views.Filters.of(await request.form())
            await run_in_threadpool(self.record, "admin-search", "", filters=filters.names)
        found = await run_in_threadpool(views.pool, self.host.store, self.host.clock, filters)
        return self.render(request, "pool", filters=filters, **found)

    async def candidate(self, request: Request) -> Response:
        candidate_id = request.path_params["candidate_id"]
        found = await run_in_threadpool(views.candidate, self.host.store, self.host.clock,
                                        candidate_id)
        if found is None:
            return self.render(request, "missing", 404)
        await run_in_threadpool(self.record, "admin-view", candidate_id)
        return self.render(request, "candidate", c=found)

    async def ledger(self, request: Request) -> Response:
        book = await run_in_threadpool(views.ledger, self.host.store, self.host.ledger)
        return self.render(request, "ledger", book=book)

    async def followups(self, request: Request) -> Response:
        rows = await run_in_threadpool(views.followups, self.host.store)
        return self.render(request, "followups", rows=rows)

    async def outbox(self, request: Request) -> Response:
        items = await run_in_threadpool(views.outbox, self.host.store)
        return self.render(request, "outbox", items=items)

    async def quarantine(self, request: Request) -> Response:
        items = await run_in_threadpool(views.quarantine, self.host.store)
        return self.render(request, "quarantine", items=items)

    async def rules(self, request: Request) -> Response:
        folder = self.host.config.rules_dir
        checked = await self._act("rules.check", {})
        if isinstance(checked, MailflowError):
            checked = {"last": None, "now": [str(checked)]}
        return self.render(request, "rules", folder=str(folder),
                           files=views.rule_files(folder), checked_at=self.host.clock.now(),
                           last=checked.get("last"), problems=checked.get("now") or [])

    # -- actions ----------------------------------------------------------------------------

    async def _act(self, command: str, args: dict[str, Any]) -> Any:
        try:
            return await run_in_threadpool(self.host.carry_out, command, args)
        except MailflowError as refused:
            return refused

    def action(self, command: str, audit_action: str, page: str) -> Handler:
        async def act(request: Request) -> Response:
            item_id = request.path_params["item_id"]
            result = await self._act(command, {"id": item_id})
            failed = isinstance(result, MailflowError) or (
                command == "quarantine.replay" and result.get("state") != "replayed")
            why = str(result) if isinstance(result, MailflowError) else str(
                result.get("reason", ""))
            await run_in_threadpool(self.record, audit_action, item_id,
                                    outcome="refused" if failed else "done")
            request.session["flash"] = {"failed": failed, "what": f"{item_id} {audit_action}",
                                        "why": why}
            return RedirectResponse(f"{self.prefix}{PATHS[page]}", 303)

        return act

    def routes(self) -> list[BaseRoute]:
        g = self.guarded
        return [
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/admin.css", self.style, methods=["GET"]),
            Route("/logout", g(self.logout), methods=["POST"]),
            Route("/", g(self.overview), methods=["GET"]),
            Route("/pool", g(self.pool), methods=["GET", "POST"]),
            Route("/candidates/{candidate_id}", g(self.candidate), methods=["GET"]),
            Route("/ledger", g(self.ledger), methods=["GET"]),
            Route("/followups", g(self.followups), methods=["GET"]),
            Route("/outbox", g(self.outbox), methods=["GET"]),
            Route("/outbox/{item_id}/resend",
                  g(self.action("outbox.resend", "admin-resend", "outbox")), methods=["POST"]),
            Route("/outbox/{item_id}/mark-sent",
                  g(self.action("outbox.mark_sent", "admin-mark-sent", "outbox")),
                  methods=["POST"]),
            Route("/quarantine", g(self.quarantine), methods=["GET"]),
            Route("/quarantine/{item_id}/replay",
                  g(self.action("quarantine.replay", "admin-replay", "quarantine")),
                  methods=["POST"]),
            Route("/rules", g(self.rules), methods=["GET"]),
        ]
