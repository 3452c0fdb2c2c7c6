"""`GET /f/{token}`: a candidate's referral link — a `302` to the company's application page
(`[referral] apply_url`) with the referrer's code in its query (`[referral] code_param`, `ref`
by default), or the friendly `404` for a malformed or unknown token, a referrer who was erased,
or no `apply_url` configured. The destination is built from the configuration and the stored
code only: nothing in the request can send the browser anywhere else. A GET records nothing
(mail scanners follow every link); the referral counts when an application quotes the code
(`intake.referral`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mailflow.pool.referrals import code_of, with_code
from mailflow.web.relay_link import NOT_FOUND

if TYPE_CHECKING:
    from mailflow.web.host import Host


def referral_routes(daemon: Host) -> list[BaseRoute]:
    settings = daemon.config.referral

    def destination(token: str) -> str | None:
        with daemon.lane:
            code = code_of(daemon.store, token)
        return with_code(settings.apply_url, settings.code_param, code) if code else None

    async def follow(request: Request) -> Response:
        if not settings.apply_url:
            return HTMLResponse(NOT_FOUND, 404)
        try:
            location = await asyncio.to_thread(destination, request.path_params["token"])
        except Exception:  # never a 5xx on a public link: a person sees the friendly page
            location = None
        if location is None:
            return HTMLResponse(NOT_FOUND, 404)
        return RedirectResponse(location, 302)

    return [Route("/f/{token:path}", follow, methods=["GET", "HEAD"])]
