"""Who may see the admin pages: a login with the admin token, a session, a CSRF token per session.

- **The token** is the value of the environment variable `[web] admin_token_env` names, read at
  each login (compared with `hmac.compare_digest`); without one the login refuses everyone.
- **The session** is Starlette's `SessionMiddleware` (a cookie signed with `itsdangerous`, the key
  derived from the admin token, or random at start when there is none): HttpOnly, SameSite=Strict,
  Secure when `public_url` is https, path `/admin`. It carries only a random session id, the CSRF
  token and the language; the id must be one this process issued and not logged out (`Sessions`),
  and not idle for more than `IDLE_SECONDS` — so a logout or a restart ends every copy of the
  cookie, not only the browser's.
- **CSRF**: every form carries the session's token (`csrf` field), checked on every POST, the
  login form included (the token is given to the login page's session before anyone logs in).
- **Failed logins** are limited per client address: `FAILURES_ALLOWED` in `FAILURE_WINDOW`
  seconds, then every try is refused until the window has passed (429).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from collections import deque

from starlette.requests import Request

from mailflow.clock import Clock
from mailflow.settings.config import Config

IDLE_SECONDS = 8 * 3600
FAILURES_ALLOWED = 5
FAILURE_WINDOW = 15 * 60
COOKIE = "mailflow_admin"


def admin_token(config: Config) -> str:
    """The admin token from the environment, "" when it is not set."""
    variable = config.web.admin_token_env
    return os.environ.get(variable, "") if variable else ""


def session_key(config: Config) -> str:
    """The key that signs the session cookie: derived from the admin token (the same across a
    restart with the same token; a new token invalidates every cookie), random without one."""
    token = admin_token(config)
    if not token:
        return secrets.token_hex(32)
    return hmac.new(token.encode(), b"mailflow admin session cookie", hashlib.sha256).hexdigest()


def token_matches(expected: str, given: str) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


class FailedLogins:
    """Failed logins per client address within the last `FAILURE_WINDOW` seconds."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._guard = threading.Lock()

    def _recent(self, client: str) -> deque[float]:
        now = self.clock.now().timestamp()
        times = self._failures.setdefault(client, deque())
        while times and now - times[0] > FAILURE_WINDOW:
            times.popleft()
        return times

    def limited(self, client: str) -> bool:
        with self._guard:
            return len(self._recent(client)) >= FAILURES_ALLOWED

    def failed(self, client: str) -> None:
        with self._guard:
            self._recent(client).append(self.clock.now().timestamp())


class Sessions:
    """The session ids this process issued, each with when it was last used."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._seen: dict[str, float] = {}
        self._guard = threading.Lock()

    def open(self) -> str:
        sid = secrets.token_urlsafe(24)
        with self._guard:
            self._seen[sid] = self.clock.now().timestamp()
        return sid

    def alive(self, sid: object) -> bool:
        """Issued, not closed, used within `IDLE_SECONDS` (and now used again)."""
        if not isinstance(sid, str):
            return False
        now = self.clock.now().timestamp()
        with self._guard:
            seen = self._seen.get(sid)
            if seen is None or now - seen > IDLE_SECONDS:
                self._seen.pop(sid, None)
                return False
            self._seen[sid] = now
            return True

    def close(self, sid: object) -> None:
        with self._guard:
            if isinstance(sid, str):
                self._seen.pop(sid, None)


def csrf_of(request: Request) -> str:
    """The session's CSRF token (made on first use)."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def csrf_ok(request: Request) -> bool:
    """A POST whose form carries this session's CSRF token."""
    expected = request.session.get("csrf")
    form = await request.form()
    given = form.get("csrf")
    return isinstance(expected, str) and isinstance(given, str) and token_matches(expected, given)


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"
