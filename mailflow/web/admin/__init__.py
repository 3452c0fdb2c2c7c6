"""The admin pages under `/admin`: the KPIs, the talent pool, the ledger, the follow-ups, the
outbox, the quarantine and the rules, for HR and the admin, behind a login with the admin token.

`admin_app(host)` is a Starlette app of its own (mounted by `web.app.build_app`), wrapped in
Starlette's `SessionMiddleware` — so the session cookie exists only under `/admin`: HttpOnly,
SameSite=Strict, Secure when `[web] public_url` is https, signed with a key derived from the
admin token, refreshed on every request and good for `auth.IDLE_SECONDS` without one. Who may
enter and how is in `auth`; what each page shows in `views`; the routes in `pages`; the words in
`texts` (Japanese, English with `?lang=en`); the chart's layout in `chart`. Templates and the
stylesheet ship in the package (`templates/`, `static/`): nothing is fetched from elsewhere, no
script runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware

from mailflow.web.admin.auth import COOKIE, IDLE_SECONDS, session_key
from mailflow.web.admin.pages import AdminPages

if TYPE_CHECKING:
    from mailflow.web.host import Host


def admin_app(host: Host) -> Starlette:
    pages = AdminPages(host)
    config = host.config
    app = Starlette(routes=pages.routes(), middleware=[Middleware(
        SessionMiddleware, secret_key=session_key(config), session_cookie=COOKIE,
        max_age=IDLE_SECONDS, path=pages.prefix, same_site="strict",
        https_only=config.web.public_url.startswith("https://"))])
    app.state.pages = pages
    return app
