"""The access token for `auth = "oauth2"`: one `TokenSource` per account, shared by every IMAP
connection and the SMTP login.

It asks the provider's token endpoint (authlib's OAuth2 client) for an access token with the
refresh token, keeps it until `MARGIN_SECONDS` before it expires, and asks again before that; a
login the server refuses drops the token (`refused`), so the next login asks for a new one: the
access token is refreshed once on an authentication failure, and a second refusal is the
server's verdict. A refresh token the provider refuses (revoked, expired) is `TokenRefused`,
never retried fast. A refresh token the provider rotates is written back to `token_file`
atomically; when the token came from an environment variable, the log says that the new one
must be stored there, and it is used from memory meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from mailflow.errors import MailflowError, MissingSecret
from mailflow.settings.config import Mailbox as MailboxSettings
from mailflow.settings.token_file import (
    OAuthCredentials,
    oauth_credentials,
    read_token_file,
    write_token_file,
)

log = logging.getLogger("mailflow.oauth")

MARGIN_SECONDS = 60.0  # an access token this close to its expiry is refreshed first


class TokenRefused(MailflowError):
    """The provider refused the refresh token (or the client): logging in again cannot help
    until an admin runs `mailflow auth login`."""


class TokenUnavailable(MailflowError):
    """The token endpoint could not be reached or answered nonsense: try again like a network
    error."""


def oauth2_client(**options: Any) -> Any:
    """authlib's OAuth2 client on httpx, imported only when OAuth is configured (a password
    login loads nothing of it). authlib >= 1.7 prefers the `httpx2` fork and warns when it
    falls back to httpx, which works as before: that warning is not the admin's business."""
    import authlib.deprecate  # noqa: F401 - it installs its "always" filter first, then ours wins

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*httpx2.*")
        from authlib.integrations.httpx_client import OAuth2Client
    return OAuth2Client(**options)


def oauth_error() -> type[Exception]:
    from authlib.integrations.base_client.errors import OAuthError

    return OAuthError


class TokenSource:
    def __init__(self, settings: MailboxSettings, wall: Callable[[], float] = time.time,
                 timeout: float = 30.0) -> None:
        self.settings = settings
        self._wall = wall
        self._timeout = timeout
        self._lock = threading.Lock()
        self._credentials: OAuthCredentials | None = None
        self._rotated: str | None = None  # a rotated refresh token kept in memory
        self._token = ""
        self._expires_at = 0.0
        self.refreshes = 0  # token requests made

    def access_token(self) -> str:
        """A valid access token, refreshed first when it is missing or about to expire."""
        with self._lock:
            if self._token and self._wall() < self._expires_at - MARGIN_SECONDS:
                return self._token
            return self._refresh()

    def refused(self, token: str) -> None:
        """The server refused a login with `token`: the next login asks for a new one."""
        with self._lock:
            if self._token == token:
                self._token, self._expires_at = "", 0.0

    def reload(self) -> None:
        """New credentials may stand in the environment or the file (after `auth login`)."""
        with self._lock:
            self._rotated, self._token = None, ""

    def _refresh(self) -> str:
        s = self.settings
        try:  # read at every refresh: the file is the truth (another process may rotate it)
            credentials = self._credentials = oauth_credentials(s)
        except MissingSecret as exc:
            raise TokenRefused(f"OAuth: {exc}") from exc
        refresh_token = (credentials.refresh_token if credentials.refresh_from_file
                         else self._rotated or credentials.refresh_token)
        client = oauth2_client(
            client_id=credentials.client_id, client_secret=credentials.client_secret or None,
            token_endpoint_auth_method="client_secret_post" if credentials.client_secret
            else "none", scope=" ".join(s.scopes) or None, timeout=self._timeout)
        self.refreshes += 1
        import httpx  # with the client above: a password login never loads it (~180 ms)

        try:
            with client:
                token = client.refresh_token(s.token_url, refresh_token=refresh_token)
        except oauth_error() as exc:
            error, why = getattr(exc, "error", "refused"), getattr(exc, "description", "")
            raise TokenRefused(
                f"OAuth {s.provider}: the token endpoint refused the refresh token for "
                f"{s.username} ({error}: {why or 'no reason given'}): run "
                f"`mailflow auth login --provider {s.provider}` and reload") from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise TokenUnavailable(f"OAuth {s.provider}: token endpoint {s.token_url}: "
                                   f"{exc}") from exc
        self._token = str(token["access_token"])
        self._expires_at = self._wall() + float(token.get("expires_in") or 3600)
        rotated = token.get("refresh_token")
        if rotated and rotated != refresh_token:
            self._keep_rotated(str(rotated))
        log.info("OAuth: new access token for %s (valid %ss)", s.username,
                 token.get("expires_in", "?"))
        return self._token

    def _keep_rotated(self, rotated: str) -> None:
        s = self.settings
        assert self._credentials is not None
        self._rotated = rotated
        if self._credentials.refresh_from_file and s.token_file is not None:
            values = read_token_file(s.token_file)
            write_token_file(s.token_file, {**values, "refresh_token": rotated})
            log.info("OAuth: the provider rotated the refresh token; written to %s",
                     s.token_file)
        else:
            log.warning("OAuth: the provider rotated the refresh token; the new one is used "
                        "from memory, store it in $%s before the next start (or use token_file)",
                        s.refresh_token_env)
