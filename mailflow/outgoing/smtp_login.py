"""The SMTP login: AUTH with the password (`[smtp] auth = "password"`, when a username is set),
or with `auth = "oauth2"` the mailbox's access token by AUTH XOAUTH2 (OAUTHBEARER when the server
offers only that), refreshed once when the server refuses it (as the IMAP login does)."""

from __future__ import annotations

import asyncio

import aiosmtplib

from mailflow.mailbox.oauth import TokenRefused, TokenSource, TokenUnavailable
from mailflow.mailbox.sasl import encoded, oauthbearer
from mailflow.settings.config import Config


async def smtp_login(client: aiosmtplib.SMTP, config: Config,
                     tokens: TokenSource | None = None) -> None:
    """Log in as configured; raises aiosmtplib's errors (a refusal: SMTPAuthenticationError,
    also when the provider refuses the refresh token)."""
    s = config.smtp
    if s.auth != "oauth2":
        if s.username:
            await client.login(s.username, config.secret("smtp.password_env"))
        return
    tokens = tokens or TokenSource(config.mailbox)
    for attempt in (1, 2):
        try:
            token = await asyncio.to_thread(tokens.access_token)
        except TokenRefused as exc:
            raise aiosmtplib.SMTPAuthenticationError(535, str(exc)) from exc
        except TokenUnavailable as exc:
            raise aiosmtplib.SMTPConnectError(str(exc)) from exc
        try:
            await _authenticate(client, s.username, s.host, s.port, token)
            return
        except aiosmtplib.SMTPAuthenticationError:
            tokens.refused(token)
            if attempt == 2:
                raise


async def _authenticate(client: aiosmtplib.SMTP, user: str, host: str, port: int,
                        token: str) -> None:
    if not client.server_auth_methods:
        await client.ehlo()
    methods = client.server_auth_methods
    if "xoauth2" in methods or "oauthbearer" not in methods:
        await client.auth_xoauth2(user, token)
        return
    response = await client.execute_command(
        b"AUTH", b"OAUTHBEARER", encoded(oauthbearer(user, host, port, token)).encode())
    if response.code == 334:  # an error challenge: answer empty to get the final reply
        response = await client.execute_command(b"")
    if response.code != 235:
        raise aiosmtplib.SMTPAuthenticationError(response.code, response.message)
