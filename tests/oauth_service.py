"""A small OAuth 2.0 token service on 127.0.0.1 for the tests: the provider Google or Microsoft
would be, reachable without the internet.

It issues access tokens for a refresh token (`/token`, grant types refresh_token,
authorization_code and the device code), answers Dovecot's introspection (`/introspect`, POST
`token=` or GET `?token=`) and a userinfo endpoint (`/userinfo`, Bearer), and has an
authorization endpoint (`/authorize`, redirects at once with a code: the test plays the admin's
browser) and a device authorization endpoint (`/devicecode`, approved at once). A test expires or
revokes tokens with plain method calls; `rotate = True` makes every refresh hand out a new
refresh token (and revoke the old one), as Microsoft does.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

LOOPBACK = "127.0.0.1"
CLIENT_ID = "mailflow-test-client"
CLIENT_SECRET = "mailflow-test-secret"


@dataclass
class AccessToken:
    user: str
    expires_at: float
    scope: str


class TokenService:
    def __init__(self, access_seconds: float = 3600) -> None:
        self.access_seconds = access_seconds
        self.rotate = False
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> user
        self.access_tokens: dict[str, AccessToken] = {}
        self.refreshes = 0  # refresh_token grants answered with a token
        self.introspections = 0
        self._codes: dict[str, tuple[str, str]] = {}  # code -> (user, redirect_uri)
        self._devices: dict[str, str] = {}  # device code -> user
        self.login_user = "admin@example.test"  # who "signs in" at /authorize and /devicecode
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- what a test does

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    def issue_refresh_token(self, user: str) -> str:
        token = "rt-" + secrets.token_urlsafe(16)
        with self._lock:
            self.refresh_tokens[token] = user
        return token

    def issue_access_token(self, user: str, scope: str = "mail") -> str:
        token = "at-" + secrets.token_urlsafe(16)
        with self._lock:
            self.access_tokens[token] = AccessToken(user, time.time() + self.access_seconds, scope)
        return token

    def expire_access_tokens(self) -> None:
        """Every access token issued so far expires now (the client is not told)."""
        with self._lock:
            for token in self.access_tokens.values():
                token.expires_at = 0.0

    def revoke(self, refresh_token: str) -> None:
        """The refresh token is revoked, and with it every access token of its user."""
        with self._lock:
            user = self.refresh_tokens.pop(refresh_token, None)
            for token in self.access_tokens.values():
                if token.user == user:
                    token.expires_at = 0.0

    def active(self, access_token: str) -> AccessToken | None:
        with self._lock:
            found = self.access_tokens.get(access_token)
            return found if found is not None and found.expires_at > time.time() else None

    # -- life cycle

    def start(self) -> None:
        service = self

        class Handler(_Handler):
            pass

        Handler.service = service
        self._server = ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="oauth-service")
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> TokenService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- grants

    def grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") != CLIENT_ID:
            return 401, {"error": "invalid_client"}
        kind = form.get("grant_type", "")
        if kind == "refresh_token":
            return self._refresh(form.get("refresh_token", ""))
        if kind == "authorization_code":
            if form.get("client_secret") != CLIENT_SECRET:
                return 401, {"error": "invalid_client"}
            with self._lock:
                code = self._codes.pop(form.get("code", ""), None)
            if code is None or code[1] != form.get("redirect_uri") or not form.get(
                    "code_verifier"):
                return 400, {"error": "invalid_grant"}
            return 200, self._tokens(code[0], self.issue_refresh_token(code[0]))
        if kind == "urn:ietf:params:oauth:grant-type:device_code":
            with self._lock:
                user = self._devices.pop(form.get("device_code", ""), None)
            if user is None:
                return 400, {"error": "expired_token"}
            return 200, self._tokens(user, self.issue_refresh_token(user))
        return 400, {"error": "unsupported_grant_type"}

    def _refresh(self, refresh_token: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            user = self.refresh_tokens.get(refresh_token)
        if user is None:
            return 400, {"error": "invalid_grant",
                         "error_description": "The refresh token has been revoked."}
        with self._lock:
            self.refreshes += 1
        if self.rotate:
            with self._lock:
                del self.refresh_tokens[refresh_token]
            return 200, self._tokens(user, self.issue_refresh_token(user))
        return 200, self._tokens(user, None)

    def _tokens(self, user: str, refresh_token: str | None) -> dict[str, Any]:
        answer: dict[str, Any] = {"access_token": self.issue_access_token(user),
                                  "token_type": "Bearer", "expires_in": int(self.access_seconds)}
        if refresh_token is not None:
            answer["refresh_token"] = refresh_token
        return answer

    def authorize(self, query: dict[str, str]) -> str:
        """The redirect the admin's browser is sent to after signing in."""
        code = "code-" + secrets.token_urlsafe(12)
        with self._lock:
            self._codes[code] = (self.login_user, query.get("redirect_uri", ""))
        separator = "&" if "?" in query.get("redirect_uri", "") else "?"
        return (query.get("redirect_uri", "") + separator
                + urlencode({"code": code, "state": query.get("state", "")}))

    def device_code(self) -> dict[str, Any]:
        code = "dc-" + secrets.token_urlsafe(12)
        with self._lock:
            self._devices[code] = self.login_user
        return {"device_code": code, "user_code": "ABCD-EFGH", "interval": 1, "expires_in": 900,
                "verification_uri": self.url + "/device",
                "message": f"To sign in, open {self.url}/device and enter the code ABCD-EFGH."}


class _Handler(BaseHTTPRequestHandler):
    service: TokenService

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        return {k: v[0] for k, v in parse_qs(body).items()}

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _introspect(self, token: str) -> None:
        self.service.introspections += 1
        found = self.service.active(token)
        if found is None:
            self._reply(200, {"active": "false"})
        else:
            self._reply(200, {"active": "true", "username": found.user, "email": found.user,
                              "scope": found.scope})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        form = self._form()
        if path == "/token":
            self._reply(*self.service.grant(form))
        elif path == "/introspect":
            self._introspect(form.get("token", ""))
        elif path == "/devicecode":
            self._reply(200, self.service.device_code())
        else:
            self._reply(404, {"error": "not_found"})

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/introspect":
            self._introspect(query.get("token", ""))
        elif parts.path == "/userinfo":
            bearer = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            found = self.service.active(bearer)
            if found is None:
                self._reply(401, {"error": "invalid_token"})
            else:
                self._reply(200, {"email": found.user, "sub": found.user})
        elif parts.path == "/authorize":
            self.send_response(302)
            self.send_header("Location", self.service.authorize(query))
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._reply(404, {"error": "not_found"})
