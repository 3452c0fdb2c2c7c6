"""One public address for several companies: `[web] public_url` may end in a path of the
company's own (`https://relay.example.jp/acme`). Every link, redirect and cookie the edge makes
carries it; a reverse proxy in front routes by host name or by that path to each company's daemon
(docs/operations.md). The daemon answers at both `/r/…` (a proxy that strips the path) and
`/acme/r/…` (one that keeps it); another company's path is simply unknown here: 404.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send


def public_path(public_url: str) -> str:
    """The path of `public_url` without its trailing slash ("" for none)."""
    return urlsplit(public_url).path.rstrip("/")


class PublicPath:
    """ASGI middleware: a request under the public path is served as if it came without it."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app, self.path = app, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.path and scope["type"] in ("http", "websocket"):
            path = str(scope.get("path", ""))
            if path == self.path or path.startswith(self.path + "/"):
                # the routes see the path without it (not as `root_path`: the mounted admin
                # app matches on what is left of the path); links carry it from `public_url`
                scope = {**scope, "path": path[len(self.path):] or "/"}
                scope.pop("raw_path", None)
        await self.app(scope, receive, send)
