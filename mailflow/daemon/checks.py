"""`mailflow check`: everything that can be wrong before the daemon starts, found at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import aiosmtplib

from mailflow.daemon.folders import watched_folders
from mailflow.errors import MailflowError, Problem
from mailflow.mailbox.imap import Mailbox
from mailflow.mailbox.tls import client_context, smtp_reason
from mailflow.outgoing.smtp_login import smtp_login
from mailflow.privacy.at_rest import data_dir_problem
from mailflow.settings.config import Config
from mailflow.settings.secrets import missing_secrets


def _sources(config: Config) -> list[Problem]:
    from mailflow.intake import sources

    return sources.check(config.rules_dir)


def _stages(config: Config) -> list[Problem]:
    from mailflow.intake import stages

    return stages.check(config.rules_dir)


def _skills(config: Config) -> list[Problem]:
    from mailflow.profile import dictionary

    return dictionary.check(config.rules_dir)


def _rejection(config: Config) -> list[Problem]:
    from mailflow.rejection import recognise as rejection

    return rejection.check(config.rules_dir)


def _templates(config: Config) -> list[Problem]:
    from mailflow.mail.rewrite.render import check_templates

    return check_templates(config.templates_dir)


def _followups(config: Config) -> list[Problem]:
    from mailflow.followups import checks as followups

    return followups.check(config.rules_dir, config.templates_dir, config.privacy.purposes)


def _followup_templates(config: Config) -> list[Problem]:
    from mailflow.followups import checks as followups

    return followups.check_templates(config.rules_dir, config.templates_dir)


def _openings(config: Config) -> list[Problem]:
    from mailflow.openings import rules as openings

    return openings.check(config.rules_dir)


def _tags(config: Config) -> list[Problem]:
    from mailflow.pool import tags

    return tags.check(config.rules_dir, config.privacy.purposes)


# Checkers of rule files and templates: config -> problems.
STATIC_CHECKS: list[Callable[[Config], list[Problem]]] = [_sources, _stages, _skills,
                                                          _rejection, _templates, _followups,
                                                          _followup_templates, _openings, _tags]


def static_problems(config: Config) -> list[Problem]:
    problems: list[Problem] = []
    for check in STATIC_CHECKS:
        problems.extend(check(config))
    return problems


def start_problems(config: Config) -> list[Problem]:
    """What `check` reports and `run` refuses to start with, all at once: the rule files and
    templates, every secret the configuration needs that is not set, and a data directory
    other users can read or write."""
    unsafe = data_dir_problem(config.data_dir)
    at_rest = [Problem(str(config.data_dir), None, unsafe)] if unsafe else []
    return static_problems(config) + missing_secrets(config) + at_rest


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
