"""A small stand-in for Career Relay's registration page: when a person registers, it posts a
correctly signed callback back to the daemon, as the partner does."""

from __future__ import annotations

import asyncio
import html
import json
import secrets
import threading
import time
import urllib.parse
from datetime import UTC, datetime

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from mailflow.demo.servers import free_port
from mailflow.relay.callbacks import SIGNATURE_HEADER, sign

PAGE = """<!doctype html><html lang="ja"><head><meta charset="utf-8">
<title>キャリアリレー 登録</title></head><body><h1>キャリアリレーに登録</h1>
<p>紹介元: {company}</p>
<form method="post" action="/register"><input type="hidden" name="company" value="{company}">
<input type="hidden" name="ref" value="{ref}"><button>登録する</button></form></body></html>
"""


class PartnerSimulator:
    """Serves GET/POST /register on 127.0.0.1; a POST sends the signed `registered` callback."""

    def __init__(self, callback_url: str, secret: str) -> None:
        self.callback_url = callback_url
        self.secret = secret.encode()
        self.port = free_port()
        self.answers: list[int] = []
        app = Starlette(routes=[Route("/register", self._page, methods=["GET"]),
                                Route("/register", self._register, methods=["POST"])])
        self._server = uvicorn.Server(uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve()),
                                        name="partner-simulator", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/register"

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    async def _page(self, request: Request) -> Response:
        return HTMLResponse(PAGE.format(company=html.escape(request.query_params.get(
            "company", "")), ref=html.escape(request.query_params.get("ref", ""))))

    async def _register(self, request: Request) -> Response:
        form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
        ref = (form.get("ref") or [""])[0]
        status = await self.post_callback("registered", ref)
        return HTMLResponse("<!doctype html><html lang='ja'><meta charset='utf-8'>"
                            f"<p>登録が完了しました（通知: {status}）</p></html>")

    async def post_callback(self, kind: str, ref: str) -> int:
        body = json.dumps({"id": "evt_" + secrets.token_hex(8), "type": kind, "ref": ref,
                           "occurred_at": datetime.now(UTC).isoformat()}).encode()
        headers = {SIGNATURE_HEADER: sign(self.secret, body, int(time.time())),
                   "Content-Type": "application/json"}
        async with httpx.AsyncClient() as client:
            answer = await client.post(self.callback_url, content=body, headers=headers)
        self.answers.append(answer.status_code)
        return answer.status_code
