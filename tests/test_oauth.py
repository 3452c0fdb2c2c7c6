"""Issue 16, parts 1 and 2: OAuth 2.0 for IMAP and SMTP, for real without the internet: Dovecot
with an `oauth2` passdb and an aiosmtpd sink both check the access tokens at the token service
in tests/oauth_service.py, which issues, expires, rotates and revokes them."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import subprocess
import time
from pathlib import Path

import aiosmtplib
import httpx
import pytest
from harness import MAILFLOW, PROJECT, DaemonThread, message, wait_until, write_config
from oauth_service import CLIENT_ID, CLIENT_SECRET, TokenService
from servers import Dovecot, ImapAccount, SmtpSink, free_port

from mailflow.daemon.connect import connect_smtp
from mailflow.mailbox.imap import AuthenticationFailed, Mailbox
from mailflow.mailbox.oauth import TokenSource
from mailflow.outgoing.smtp_login import smtp_login
from mailflow.settings.config import load_config
from mailflow.settings.token_file import read_token_file, write_token_file


def oauth_config(tmp_path: Path, account: ImapAccount, service: TokenService,
                 refresh_token: str, extra: str = "", **mailbox: object) -> tuple[Path, str]:
    """A config logging in with OAuth (token file `token.json`), and its web edge's URL."""
    write_token_file(tmp_path / "token.json", {"client_id": CLIENT_ID,
                                               "client_secret": CLIENT_SECRET,
                                               "refresh_token": refresh_token})
    port = free_port()
    config = write_config(
        tmp_path, account,
        extra=f'[web]\nlisten = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}"\n'
              + extra,
        auth="oauth2", provider="custom", token_url=service.token_url,
        token_file="token.json", auth_retry_seconds=5, **mailbox)
    return config, f"http://127.0.0.1:{port}"


def test_imap_login_with_an_access_token(tmp_path: Path, oauth_account: ImapAccount,
                                         token_service: TokenService) -> None:
    refresh = token_service.issue_refresh_token(oauth_account.username)
    config, _base = oauth_config(tmp_path, oauth_account, token_service, refresh)
    mailbox = Mailbox(load_config(config).mailbox, "")
    mailbox.connect()
    try:
        assert mailbox.exists("INBOX")
    finally:
        mailbox.close()


def test_expired_access_token_refreshed_mid_run_and_no_mail_missed(
        tmp_path: Path, dovecot_oauth: Dovecot, oauth_account: ImapAccount,
        token_service: TokenService, caplog: pytest.LogCaptureFixture) -> None:
    user = oauth_account.username
    refresh = token_service.issue_refresh_token(user)
    config, base = oauth_config(tmp_path, oauth_account, token_service, refresh)
    caplog.set_level(logging.INFO, logger="mailflow")
    with DaemonThread(config) as running:
        daemon = running.daemon
        assert daemon.tokens is not None and daemon.tokens.refreshes == 1  # one for all folders
        dovecot_oauth.append(user, "INBOX", message(1, "before the expiry"))
        wait_until(lambda: len(running.handled()) == 1, what="the first mail taken in")

        token_service.expire_access_tokens()  # the provider ends them; mailflow is not told
        dovecot_oauth.kick(user)  # every connection logs in again, with the expired token
        dovecot_oauth.append(user, "INBOX", message(2, "after the expiry"))
        wait_until(lambda: len(running.handled()) == 2, timeout=20,
                   what="the mail appended after the expiry")
        wait_until(lambda: all(w.connected for w in daemon.watchers), what="every folder back")
        assert daemon.tokens.refreshes == 2  # refreshed once, shared by every folder
        assert set(running.handled().values()) == {1}  # each mail taken in once
        assert httpx.get(base + "/healthz", timeout=5).status_code == 200
    assert "refused the access token; refreshing it once" in caplog.text


def test_revoked_refresh_token_is_one_clear_error_and_unhealthy(
        tmp_path: Path, dovecot_oauth: Dovecot, oauth_account: ImapAccount,
        token_service: TokenService, caplog: pytest.LogCaptureFixture) -> None:
    user = oauth_account.username
    refresh = token_service.issue_refresh_token(user)
    config, base = oauth_config(tmp_path, oauth_account, token_service, refresh)
    caplog.set_level(logging.INFO, logger="mailflow")
    with DaemonThread(config) as running:
        token_service.revoke(refresh)
        dovecot_oauth.kick(user)
        health = wait_until(lambda: (h := httpx.get(base + "/healthz", timeout=5)).status_code
                            == 503 and h, timeout=10, interval=0.05, what="/healthz 503")
        [reason] = [r for r in health.json()["reasons"] if r.startswith("imap:")]
        assert "refused the refresh token" in reason and "invalid_grant" in reason
        assert "mailflow auth login" in reason and refresh not in reason
        time.sleep(1.5)
        assert not any(w.connected for w in running.daemon.watchers)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "refused the refresh token" in errors[0].getMessage()


def test_rotated_refresh_token_written_back_owner_only(
        tmp_path: Path, oauth_account: ImapAccount, token_service: TokenService) -> None:
    refresh = token_service.issue_refresh_token(oauth_account.username)
    config, _base = oauth_config(tmp_path, oauth_account, token_service, refresh)
    token_service.rotate = True
    try:
        mailbox = Mailbox(load_config(config).mailbox, "")
        mailbox.connect()
        mailbox.close()
    finally:
        token_service.rotate = False
    path = tmp_path / "token.json"
    stored = read_token_file(path)
    assert stored["refresh_token"] != refresh
    assert stored["refresh_token"] in token_service.refresh_tokens
    assert stored["client_id"] == CLIENT_ID and stored["client_secret"] == CLIENT_SECRET
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".token.json.*"))  # no temporary file left
    again = Mailbox(load_config(config).mailbox, "")  # the new token works; the old is gone
    again.connect()
    again.close()


def test_token_file_readable_by_others_refused(tmp_path: Path, oauth_account: ImapAccount,
                                               token_service: TokenService) -> None:
    refresh = token_service.issue_refresh_token(oauth_account.username)
    config, _base = oauth_config(tmp_path, oauth_account, token_service, refresh)
    (tmp_path / "token.json").chmod(0o644)
    with pytest.raises(AuthenticationFailed, match=r"readable by others .*chmod 600"):
        Mailbox(load_config(config).mailbox, "").connect()


def test_smtp_sends_with_xoauth2_and_refreshes_a_refused_token(
        tmp_path: Path, oauth_account: ImapAccount, token_service: TokenService) -> None:
    user = oauth_account.username
    refresh = token_service.issue_refresh_token(user)
    with SmtpSink(oauth_introspection_url=token_service.url + "/introspect") as sink:
        config_path, _base = oauth_config(tmp_path, oauth_account, token_service, refresh)
        text = config_path.read_text().replace(f"port = {2525}\n",
                                               f'port = {sink.port}\nauth = "oauth2"\n')
        config_path.write_text(text)
        config = load_config(config_path)
        assert config.smtp.auth == "oauth2" and config.smtp.username == user
        assert connect_smtp(config)  # `check --connect` logs in too
        tokens = TokenSource(config.mailbox)

        async def send() -> None:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, timeout=10)
            await client.connect()
            try:
                await smtp_login(client, config, tokens)
                await client.sendmail(user, ["someone@example.net"], message(1, "by XOAUTH2"))
            finally:
                await client.quit()

        asyncio.run(send())
        token_service.expire_access_tokens()
        attempts = sink.oauth_attempts
        asyncio.run(send())  # the cached token is refused once, then refreshed
        assert sink.oauth_attempts - attempts == 2 and tokens.refreshes == 2
        received = sink.wait_for(2)
        assert [m.login for m in received] == [user, user]

        token_service.revoke(refresh)
        with pytest.raises(aiosmtplib.SMTPAuthenticationError, match="refresh token"):
            asyncio.run(send())


def _auth_login(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "MAILFLOW_CONFIG"}
    env["MAILFLOW_OAUTH_CLIENT_SECRET"] = CLIENT_SECRET
    env["PYTHONPATH"] = str(PROJECT)
    return subprocess.Popen([*MAILFLOW, "auth", "login", "--client-id", CLIENT_ID,
                             "--token-file", str(tmp_path / "token.json"), *args],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_auth_login_google_loopback_stores_a_working_token_file(
        tmp_path: Path, oauth_account: ImapAccount, token_service: TokenService) -> None:
    token_service.login_user = oauth_account.username
    process = _auth_login(tmp_path, "--provider", "google", "--token-url",
                          token_service.token_url, "--authorize-url",
                          token_service.url + "/authorize")
    assert process.stdout is not None
    lines = []
    for line in process.stdout:  # the admin reads the URL and opens it
        lines.append(line)
        if line.startswith(token_service.url + "/authorize?"):
            url = line.strip()
            assert "code_challenge_method=S256" in url and "access_type=offline" in url
            assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in url
            browser = httpx.get(url, follow_redirects=True, timeout=10)  # back to the listener
            assert browser.status_code == 200 and "done" in browser.text
            break
    output = "".join(lines) + process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    path = tmp_path / "token.json"
    assert "token stored in" in output and stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = read_token_file(path)
    assert stored["refresh_token"] in token_service.refresh_tokens
    config, _base = oauth_config(tmp_path, oauth_account, token_service,
                                 stored["refresh_token"])
    mailbox = Mailbox(load_config(config).mailbox, "")  # the stored token logs in
    mailbox.connect()
    mailbox.close()


def test_auth_login_microsoft_device_code_stores_a_token_file(
        tmp_path: Path, token_service: TokenService) -> None:
    token_service.login_user = "device-user@example.test"
    process = _auth_login(tmp_path, "--provider", "microsoft", "--token-url",
                          token_service.token_url, "--device-url",
                          token_service.url + "/devicecode")
    output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert "enter the code ABCD-EFGH" in output
    stored = read_token_file(tmp_path / "token.json")
    assert token_service.refresh_tokens[stored["refresh_token"]] == "device-user@example.test"


def test_provider_presets_fill_what_the_file_leaves_out(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[mailbox]\nprovider = "microsoft"\nauth = "oauth2"\ntenant = "contoso"\n'
                    'username = "jobs@contoso.example"\ntoken_file = "t.json"\n'
                    '[smtp]\nauth = "oauth2"\n')
    config = load_config(path)
    m, s = config.mailbox, config.smtp
    assert (m.host, m.port, m.security) == ("outlook.office365.com", 993, "tls")
    assert m.token_url == "https://login.microsoftonline.com/contoso/oauth2/v2.0/token"
    assert "offline_access" in m.scopes and m.token_file == tmp_path / "t.json"
    assert (s.host, s.port, s.username) == ("smtp.office365.com", 587, "jobs@contoso.example")
    path.write_text('[mailbox]\nprovider = "google"\n')  # a password login is left as it was
    assert load_config(path).mailbox.host == "127.0.0.1"


def test_check_names_the_missing_oauth_secrets_and_exits_2(
        tmp_path: Path, oauth_account: ImapAccount, token_service: TokenService) -> None:
    config, _base = oauth_config(tmp_path, oauth_account, token_service, "rt-unused")
    (tmp_path / "token.json").chmod(0o640)
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    done = subprocess.run([*MAILFLOW, "check", "-c", str(config)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "OAuth: token file" in done.stderr and "readable by others" in done.stderr
    (tmp_path / "token.json").unlink()
    done = subprocess.run([*MAILFLOW, "check", "-c", str(config)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "mailflow auth login" in done.stderr
