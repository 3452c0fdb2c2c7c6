"""Issue 16 (part 3): TLS done right against a real Dovecot and aiosmtpd, with certificates from
trustme: an internal CA works through `ca_file`; a wrong host, an expired certificate and an
unknown CA each fail with one plain line; STARTTLS never falls back to plain text."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from servers import Dovecot, SmtpSink

from mailflow.daemon.connect import connect_smtp
from mailflow.errors import MailflowError
from mailflow.mailbox.imap import Mailbox, MailboxError
from mailflow.settings.config import Config, Smtp
from mailflow.settings.config import Mailbox as MailboxSettings

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def pem_files(tmp: Path, cert: trustme.LeafCert, name: str) -> tuple[Path, Path]:
    chain, key = tmp / f"{name}.pem", tmp / f"{name}.key"
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    key.write_bytes(cert.private_key_pem.bytes())
    return chain, key


def served(tmp: Path, cert: trustme.LeafCert, name: str) -> Iterator[Dovecot]:
    server = Dovecot(tls=pem_files(tmp, cert, name))  # its own root: the mail user reads it
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def good(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    yield from served(tmp_path_factory.mktemp("tls"), ca.issue_cert(HOST), "good")


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "internal-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def login(server: Dovecot, security: str, ca_file: Path | None) -> None:
    account = server.add_user(f"tls-{security}-{bool(ca_file)}", "secret")
    port = server.imaps_port if security == "tls" else server.port
    settings = MailboxSettings(host=HOST, port=port, security=security,  # type: ignore[arg-type]
                               username=account.username, ca_file=ca_file, timeout_seconds=5)
    mailbox = Mailbox(settings, account.password)
    mailbox.connect()
    mailbox.close()


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_the_internal_ca_works_through_ca_file(good: Dovecot, ca_file: Path,
                                               security: str) -> None:
    login(good, security, ca_file)


def reason(server: Dovecot, security: str, ca_file: Path | None) -> str:
    with pytest.raises(MailboxError) as refused:
        login(server, security, ca_file)
    text = str(refused.value)
    assert "\n" not in text and "b'" not in text and "Traceback" not in text
    return text


def test_an_unknown_ca_fails_in_one_line(good: Dovecot) -> None:
    text = reason(good, "tls", None)  # the system's store does not know the internal CA
    assert text.startswith(f"IMAP {HOST}:{good.imaps_port}: TLS: ")
    assert "unknown CA" in text and "ca_file" in text


def test_a_certificate_for_another_host_fails_in_one_line(
        ca: trustme.CA, ca_file: Path, tmp_path: Path) -> None:
    for server in served(tmp_path, ca.issue_cert("mail.example.co.jp"), "other"):
        assert "not for 127.0.0.1 (host name mismatch)" in reason(server, "tls", ca_file)
        assert "host name mismatch" in reason(server, "starttls", ca_file)


def test_an_expired_certificate_fails_in_one_line(
        ca: trustme.CA, ca_file: Path, tmp_path: Path) -> None:
    old = datetime.now(UTC) - timedelta(days=30)
    cert = ca.issue_cert(HOST, not_before=old - timedelta(days=365), not_after=old)
    for server in served(tmp_path, cert, "expired"):
        assert "certificate has expired" in reason(server, "tls", ca_file)


def test_starttls_never_falls_back_to_plain_text(dovecot: Dovecot, ca_file: Path) -> None:
    text = reason(dovecot, "starttls", ca_file)  # this Dovecot has no TLS at all
    assert "does not offer STARTTLS" in text and "does not fall back" in text


def smtp_config(sink: SmtpSink, ca_file: Path | None) -> Config:
    return Config(smtp=Smtp(host=HOST, port=sink.port, security="starttls", ca_file=ca_file,
                            timeout_seconds=5))


def test_smtp_starttls_with_the_internal_ca(ca: trustme.CA, ca_file: Path) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(context)
    with SmtpSink(tls_context=context) as sink:
        assert connect_smtp(smtp_config(sink, ca_file))
        with pytest.raises(MailflowError) as refused:
            connect_smtp(smtp_config(sink, None))
    text = str(refused.value)
    assert "\n" not in text and "TLS: " in text and "unknown CA" in text


def test_smtp_starttls_is_required_when_configured(ca_file: Path) -> None:
    with SmtpSink() as sink, pytest.raises(MailflowError) as refused:
        connect_smtp(smtp_config(sink, ca_file))
    assert "does not offer STARTTLS" in str(refused.value)
