"""Getting the refresh token, once, with an admin at the keyboard (`mailflow auth login`).

Two flows, both through authlib's OAuth2 client: the loopback redirect (RFC 8252, Google's flow
for installed apps: a one-shot HTTP listener on 127.0.0.1, the authorization URL printed, PKCE
S256 and a state checked) and the device code (RFC 8628, Microsoft's: a code the admin enters at
the provider's page from any browser, the token endpoint polled meanwhile). Both end with the
token endpoint's answer; the caller stores it (settings/token_file.py).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mailflow.errors import MailflowError
from mailflow.mailbox.oauth import oauth2_client, oauth_error

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
Say = Callable[[str], None]


class AuthorizationFailed(MailflowError):
    """The admin or the provider did not grant access."""


@dataclass(frozen=True)
class Client:
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]
    token_url: str


def loopback_flow(client: Client, authorize_url: str, say: Say,
                  timeout: float = 300.0) -> dict[str, Any]:
    """The loopback-redirect flow: the token endpoint's answer (with a refresh token)."""
    got: dict[str, str] = {}
    arrived = threading.Event()

    class Redirected(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            if "code" not in query and "error" not in query:
                self.send_response(404)
                self.end_headers()
                return
            got.update(query)
            body = "mailflow: done, you may close this window. / 完了しました。".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            arrived.set()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    listener = HTTPServer(("127.0.0.1", 0), Redirected)
    redirect_uri = f"http://127.0.0.1:{listener.server_address[1]}/"
    verifier = secrets.token_urlsafe(48)
    session = oauth2_client(client_id=client.client_id, client_secret=client.client_secret,
                            token_endpoint_auth_method="client_secret_post",
                            scope=" ".join(client.scopes), redirect_uri=redirect_uri,
                            code_challenge_method="S256", timeout=30)
    url, state = session.create_authorization_url(
        authorize_url, code_verifier=verifier, access_type="offline", prompt="consent")
    say("Open this URL in a browser, sign in as the mailbox's user and allow access:")
    say(url)
    say(f"(waiting for the browser to come back to {redirect_uri})")
    serving = threading.Thread(target=listener.serve_forever, daemon=True)
    serving.start()
    try:
        if not arrived.wait(timeout):
            raise AuthorizationFailed(f"no answer from the browser within {timeout:.0f}s")
    finally:
        listener.shutdown()
        listener.server_close()
    if "error" in got:
        raise AuthorizationFailed(f"the provider said {got['error']}: "
                                  f"{got.get('error_description', 'access not granted')}")
    if got.get("state") != state:
        raise AuthorizationFailed("the browser came back with another state: try again")
    with session:
        return _token(session.fetch_token, client.token_url, code=got["code"],
                      grant_type="authorization_code", code_verifier=verifier,
                      redirect_uri=redirect_uri)


def device_flow(client: Client, device_url: str, say: Say, timeout: float = 900.0,
                sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """The device-code flow: the token endpoint's answer (with a refresh token)."""
    session = oauth2_client(client_id=client.client_id,
                            client_secret=client.client_secret or None,
                            token_endpoint_auth_method="client_secret_post"
                            if client.client_secret else "none",
                            scope=" ".join(client.scopes), timeout=30)
    with session:
        answer = session.request("POST", device_url, withhold_token=True,
                                 data={"client_id": client.client_id,
                                       "scope": " ".join(client.scopes)})
        device = answer.json()
        if answer.status_code != 200 or "device_code" not in device:
            raise AuthorizationFailed(f"device authorization at {device_url}: "
                                      f"{device.get('error_description') or answer.status_code}")
        say(device.get("message") or f"Open {device['verification_uri']} and enter the code "
            f"{device['user_code']}")
        interval = float(device.get("interval", 5))
        deadline = time.monotonic() + min(timeout, float(device.get("expires_in", timeout)))
        while time.monotonic() < deadline:
            try:
                return _token(session.fetch_token, client.token_url, grant_type=DEVICE_GRANT,
                              device_code=device["device_code"], pending_ok=True)
            except _Pending as pending:
                interval += 5 if pending.slow_down else 0
                sleep(interval)
    raise AuthorizationFailed("the code was not entered in time: run the command again")


class _Pending(Exception):
    def __init__(self, slow_down: bool) -> None:
        self.slow_down = slow_down


def _token(fetch: Callable[..., Any], url: str, pending_ok: bool = False,
           **params: Any) -> dict[str, Any]:
    try:
        token = dict(fetch(url, **params))
    except oauth_error() as exc:
        error = getattr(exc, "error", "")
        if pending_ok and error in ("authorization_pending", "slow_down"):
            raise _Pending(error == "slow_down") from exc
        raise AuthorizationFailed(f"the token endpoint refused: {error}: "
                                  f"{getattr(exc, 'description', '') or 'no reason given'}"
                                  ) from exc
    if not token.get("refresh_token"):
        raise AuthorizationFailed("the provider gave no refresh token (Google: the consent "
                                  "screen must ask for offline access; Microsoft: the "
                                  "offline_access scope)")
    return token
