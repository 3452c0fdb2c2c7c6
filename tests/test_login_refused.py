"""Issue 16, part 5: a refused login is not a network error, against the real Dovecot: one error
line in plain words, /healthz unhealthy within one retry, slow retries (counted on the server),
and mail taken in once the credentials are fixed and the daemon reloaded."""

from __future__ import annotations

import imaplib
import logging
import re
import signal
import time
from pathlib import Path

import httpx
import pytest
from harness import (
    PASSWORD_ENV,
    DaemonThread,
    daemon_process,
    handled_in_store,
    message,
    metrics_auth,
    wait_until,
    write_config,
)
from imapclient.exceptions import LoginError
from servers import Dovecot, ImapAccount, free_port

from mailflow.mailbox.imap import AuthenticationFailed, Mailbox, MailboxError, refused_login
from mailflow.settings.config import load_config


def login_attempts(dovecot: Dovecot, user: str) -> tuple[int, int]:
    """(accepted, refused) LOGINs of `user`, as Dovecot's log tells them."""
    text = dovecot.log_path.read_text(errors="replace")
    accepted = len(re.findall(rf"Login: user=<{re.escape(user)}>", text))
    refused = sum(int(n) for n in re.findall(
        rf"auth failed, (\d+) attempts in \d+ secs\): user=<{re.escape(user)}>", text))
    return accepted, refused


def configured(tmp_path: Path, account: ImapAccount, **mailbox: float) -> tuple[Path, str]:
    port = free_port()
    config = write_config(tmp_path, account, extra=(
        f'[web]\nlisten = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}"\n'),
        **mailbox)
    return config, f"http://127.0.0.1:{port}"


def healthz(base: str) -> int | None:
    """The status /healthz answers, None while nothing listens."""
    try:
        return httpx.get(base + "/healthz", timeout=5).status_code
    except httpx.ConnectError:
        return None


def metric(base: str, name: str) -> float:
    text = httpx.get(base + "/metrics", headers=metrics_auth(), timeout=10).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def test_the_refusal_in_plain_words(tmp_path: Path, imap_account: ImapAccount) -> None:
    config = load_config(write_config(tmp_path, imap_account))
    with pytest.raises(AuthenticationFailed) as refused:
        Mailbox(config.mailbox, "not-the-password").connect()
    assert str(refused.value) == (
        f"IMAP 127.0.0.1:{imap_account.port}: the server refused the login for user "
        f"{imap_account.username} (authentication failed): check mailbox.username and the "
        f"password in ${PASSWORD_ENV}")
    assert "b'" not in str(refused.value) and "not-the-password" not in str(refused.value)


def _login_error(said: bytes, error: type[Exception] = imaplib.IMAP4.error) -> LoginError:
    """A LoginError as imapclient raises it: inside the handler of imaplib's error."""
    try:
        try:
            raise error(said)
        except imaplib.IMAP4.error as exc:
            raise LoginError(str(exc))  # noqa: B904 - as imapclient does
    except LoginError as login:
        return login
    raise AssertionError("unreachable")


@pytest.mark.parametrize(("said", "kind", "words"), [
    (b"[AUTHENTICATIONFAILED] Authentication failed.", AuthenticationFailed,
     "(authentication failed): check mailbox.username"),
    (b"[PRIVACYREQUIRED] Plaintext authentication disallowed.", AuthenticationFailed,
     '(a password is refused over a connection that is not encrypted): use security = "tls"'),
    (b"Login failed.", AuthenticationFailed, "(login failed): check"),
    (b"[UNAVAILABLE] Temporary authentication failure.", MailboxError,
     "the server cannot check logins right now (unavailable)"),
])
def test_refusals_and_temporary_trouble_told_apart(tmp_path: Path, imap_account: ImapAccount,
                                                  said: bytes, kind: type[Exception],
                                                  words: str) -> None:
    settings = load_config(write_config(tmp_path, imap_account)).mailbox
    error = refused_login(settings, _login_error(said))
    assert type(error) is kind and words in str(error) and "b'" not in str(error)
    lost = refused_login(settings, _login_error(b"socket error: EOF", imaplib.IMAP4.abort))
    assert not isinstance(lost, AuthenticationFailed) and "connection lost" in str(lost)


def test_rotated_password_unhealthy_slow_retries_and_reload_takes_mail_in(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The password changes on the server while the daemon runs (three folders watched)."""
    user = imap_account.username
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    config, base = configured(tmp_path, imap_account, auth_retry_seconds=5)
    caplog.set_level(logging.INFO, logger="mailflow")
    with DaemonThread(config) as running:
        daemon = running.daemon
        assert len(daemon.watchers) == 3 and metric(base, 'mailflow_up{part="imap"}') == 1
        assert metric(base, "mailflow_mailbox_auth_failed") == 0
        dovecot.set_password(user, "Rot8-xyzzy-42")
        _accepted, refused_before = login_attempts(dovecot, user)
        attempts_before = daemon.login.attempts
        dovecot.kick(user)
        kicked = time.monotonic()

        health = wait_until(lambda: (h := httpx.get(base + "/healthz", timeout=5)).status_code
                            == 503 and h, timeout=5, interval=0.05, what="/healthz 503")
        unhealthy_after = time.monotonic() - kicked
        assert unhealthy_after < 5, "unhealthy only after the second attempt"
        body = health.json()
        assert body["status"] == "unhealthy"
        [reason] = [r for r in body["reasons"] if "authentication failed" in r]
        assert reason.startswith("imap: IMAP 127.0.0.1:") and "b'" not in reason
        assert PASSWORD_ENV in reason and "Rot8-xyzzy-42" not in reason
        assert metric(base, 'mailflow_up{part="imap"}') == 0
        assert metric(base, "mailflow_mailbox_auth_failed") == 1

        dovecot.append(user, "INBOX", message(1, "while the login was refused"))
        # the old code: three folders reconnecting every 1-2 s, about 15 refused logins in 10 s
        wait_until(lambda: daemon.login.attempts - attempts_before >= 3, timeout=15,
                   what="the third login attempt")
        third = time.monotonic() - kicked
        time.sleep(1.0)  # Dovecot logs a refused login when its connection closes
        assert daemon.login.attempts - attempts_before == 3
        assert login_attempts(dovecot, user)[1] - refused_before == 3  # counted by the server
        assert third >= 10, f"three login attempts in {third:.1f}s"
        assert len(running.handled()) == 0

        monkeypatch.setenv(PASSWORD_ENV, "Rot8-xyzzy-42")
        reloaded = time.monotonic()
        daemon.reload()
        wait_until(lambda: all(w.connected for w in daemon.watchers), timeout=3, interval=0.05,
                   what="every folder logged in at once after the reload")
        assert time.monotonic() - reloaded < 3  # the next slow retry was ~4 s away
        wait_until(lambda: len(running.handled()) == 1, what="the mail that came meanwhile")
        wait_until(lambda: healthz(base) == 200, timeout=10, what="healthy again")
        assert metric(base, "mailflow_mailbox_auth_failed") == 0

    refusals = [r for r in caplog.records if "refused the login" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].levelno == logging.ERROR, refusals
    assert "b'" not in refusals[0].getMessage()
    assert not [r for r in caplog.records if r.created > refusals[0].created
                and r.levelno >= logging.WARNING], "a warning (or error) per retry"


def test_wrong_password_at_start_one_attempt_for_all_folders(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "Wr0ng-quux-99")
    config, base = configured(tmp_path, imap_account, auth_retry_seconds=300)
    started = time.monotonic()
    with DaemonThread(config, wait_watching=False) as running:
        wait_until(lambda: healthz(base) == 503, timeout=10, interval=0.05, what="503")
        assert time.monotonic() - started < 5
        assert "authentication failed" in httpx.get(base + "/healthz").json()["reasons"][0]
        time.sleep(2.0)
        assert running.daemon.login.attempts == 1  # one for the three folders, not three
        assert login_attempts(dovecot, imap_account.username) == (0, 1)
        monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
        running.daemon.reload()
        wait_until(running.watching, timeout=5, what="every folder watched after the reload")
        assert healthz(base) == 200


def test_sighup_logs_in_at_once_after_the_account_is_fixed_on_the_server(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount) -> None:
    """`mailflow run` as a process (its environment cannot change): the admin fixes the account
    on the server and sends SIGHUP; the default slow retry (300 s) is not waited out."""
    user = imap_account.username
    config, base = configured(tmp_path, imap_account, auth_retry_seconds=300)
    log = tmp_path / "daemon.log"
    with daemon_process(config, imap_account) as process:
        wait_until(lambda: healthz(base) == 200, timeout=30, what="the daemon up")
        time.sleep(1.0)  # the first catch-up sets the checkpoints at the folders' ends
        dovecot.set_password(user, "Lock9-plugh-17")
        dovecot.kick(user)
        wait_until(lambda: healthz(base) == 503, timeout=10, what="/healthz 503")
        dovecot.append(user, "INBOX", message(2, "while the login was refused"))
        time.sleep(3.0)
        assert login_attempts(dovecot, user)[1] == 1
        dovecot.set_password(user, imap_account.password)
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: len(handled_in_store(config)) == 1, timeout=15,
                   what="the mail taken in after SIGHUP")
        wait_until(lambda: healthz(base) == 200, timeout=10, what="healthy again")
    text = log.read_text(errors="replace")
    assert text.count("refused the login") == 1, text
    assert "b'" not in text and "Lock9-plugh-17" not in text
