"""`mailflow check --connect`: log in to IMAP and SMTP as the daemon would, and report the
folders it will watch (apart from the static checks, so that `check` alone loads no mail
client)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiosmtplib

from mailflow.daemon.folders import watched_folders
from mailflow.errors import MailflowError
from mailflow.mailbox.imap import Mailbox
from mailflow.mailbox.tls import client_context, smtp_reason
from mailflow.outgoing.smtp_login import smtp_login
from mailflow.settings.config import Config


@dataclass(frozen=True)
class FolderReport:
    role: str
    name: str
    exists: bool
    how: str = "configured name"


def connect_imap(config: Config) -> list[FolderReport]:
    """Log in to IMAP (fatal on failure) and report the folders to watch."""
    mailbox = Mailbox(config.mailbox, config.imap_password())
    try:
        mailbox.connect()
        reports = []
        roles = [(role, configured) for role, configured, _create in watched_folders(config)]
        for role, configured in [*roles, ("trash", config.mailbox.trash)]:
            name, how = mailbox.find(role, configured)
            reports.append(FolderReport(role, name, mailbox.exists(name), how))
        return reports
    finally:
        mailbox.close()


def connect_smtp(config: Config) -> str:
    """Connect (and log in when configured) to SMTP; returns the server's greeting name."""
    s = config.smtp
    if s.username and s.auth == "password":
        config.secret("smtp.password_env")  # a missing one is named before connecting

    async def probe() -> str:
        client = aiosmtplib.SMTP(hostname=s.host, port=s.port, use_tls=s.security == "tls",
                                 start_tls=s.security == "starttls", timeout=s.timeout_seconds,
                                 tls_context=client_context(s.ca_file))
        try:
            await client.connect()
            await smtp_login(client, config)
            return str(client.hostname)
        except aiosmtplib.SMTPException as exc:
            raise MailflowError(f"SMTP {s.host}:{s.port}: {smtp_reason(exc, s.host, s.ca_file)}"
                                ) from exc
        except OSError as exc:
            raise MailflowError(f"SMTP {s.host}:{s.port}: {smtp_reason(exc, s.host, s.ca_file)}"
                                ) from exc
        finally:
            if client.is_connected:
                try:
                    await client.quit()
                except aiosmtplib.SMTPException:
                    client.close()

    return asyncio.run(probe())
