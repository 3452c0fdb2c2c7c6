"""Shared fixtures: real mail servers on 127.0.0.1 (see tests/servers.py).

A missing Dovecot makes the tests that need it fail, never skip: a skipped test must not pass
for a green run.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from oauth_service import TokenService
from postgres_server import Postgres
from servers import (
    INSTALL_HINT,
    Dovecot,
    DovecotMissing,
    ImapAccount,
    MailFormat,
    SmtpSink,
    StallingProxy,
)

_user_numbers = itertools.count(1)

# Property-based tests (tests/test_properties_*.py): a few dozen examples each in `make test`
# ("ci"), thousands by HYPOTHESIS_PROFILE=full; no deadline, so a busy machine fails nothing.
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])  # the same every run
settings.register_profile("full", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The secrets every configuration needs (`mailflow check` and `run` refuse to go on without
# them), under their default variable names; configs from harness.write_config name their own
# IMAP password variable (harness.PASSWORD_ENV) with the test account's password.
TEST_SECRETS = {"MAILFLOW_IMAP_PASSWORD": "imap-password-for-tests",
                "MAILFLOW_RELAY_SECRET": "relay-secret-for-tests",
                "MAILFLOW_LEDGER_KEY": "ledger-key-for-tests",
                # the admin pages' login and the bearer token of /metrics
                "MAILFLOW_ADMIN_TOKEN": "admin-token-for-tests"}


@pytest.fixture(autouse=True)
def required_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with the callback secret and the ledger key set (unless the environment
    has its own); a test about a missing one deletes it."""
    for variable, value in TEST_SECRETS.items():
        if not os.environ.get(variable):
            monkeypatch.setenv(variable, value)


def _start_dovecot(mail_format: MailFormat = "sdbox", **options: Any) -> Dovecot:
    try:
        server = Dovecot(mail_format, **options)
    except DovecotMissing:
        pytest.fail(f"Dovecot is not installed: {INSTALL_HINT}", pytrace=False)
    try:
        server.start()
    except Exception:
        server.close()
        raise
    return server


def _fresh_account(server: Dovecot, request: pytest.FixtureRequest) -> ImapAccount:
    stem = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:40]
    return server.add_user(f"u{next(_user_numbers)}-{stem}", "secret")


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """One Dovecot (sdbox storage, delimiter "/") for the whole session."""
    server = _start_dovecot("sdbox")
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One throw-away PostgreSQL cluster on loopback, started on first use; a test takes a
    schema of its own with `postgres.schema()`."""
    with Postgres() as server:
        yield server


@pytest.fixture(scope="session")
def dovecot_maildir() -> Iterator[Dovecot]:
    """One Dovecot with Maildir storage (hierarchy delimiter "."), started on first use."""
    server = _start_dovecot("maildir")
    yield server
    server.close()


@pytest.fixture
def imap_account(dovecot: Dovecot, request: pytest.FixtureRequest) -> ImapAccount:
    """A new user with an empty mailbox (INBOX, Drafts, Sent, Trash) for this test only."""
    return _fresh_account(dovecot, request)


@pytest.fixture
def maildir_account(dovecot_maildir: Dovecot, request: pytest.FixtureRequest) -> ImapAccount:
    """Like `imap_account`, on the Maildir server."""
    return _fresh_account(dovecot_maildir, request)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """An SMTP server on 127.0.0.1 keeping what it receives (no AUTH; see SmtpSink)."""
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def smtp_sink_auth() -> Iterator[SmtpSink]:
    """An SMTP sink that requires AUTH as user "mailflow", password "relay-secret"."""
    sink = SmtpSink(auth=("mailflow", "relay-secret"))
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def stalling_proxy() -> Iterator[Callable[..., StallingProxy]]:
    """A factory: `stalling_proxy(port, host="127.0.0.1")` starts a proxy in front of it."""
    proxies: list[StallingProxy] = []

    def start(target_port: int, target_host: str = "127.0.0.1") -> StallingProxy:
        proxy = StallingProxy(target_port, target_host)
        proxy.start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


@pytest.fixture(scope="session")
def token_service() -> Iterator[TokenService]:
    """The OAuth token service on 127.0.0.1 (tests/oauth_service.py), for the whole session."""
    service = TokenService()
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def dovecot_oauth(token_service: TokenService) -> Iterator[Dovecot]:
    """A Dovecot that also takes XOAUTH2 and OAUTHBEARER, checking tokens at `token_service`."""
    server = _start_dovecot(oauth2_introspection_url=token_service.url + "/introspect")
    yield server
    server.close()


@pytest.fixture
def oauth_account(dovecot_oauth: Dovecot, request: pytest.FixtureRequest) -> ImapAccount:
    """A new user on the OAuth Dovecot (its password works too, for the test's own appends)."""
    return _fresh_account(dovecot_oauth, request)
