"""`mailflow check [--connect]`: config, rules and templates; with --connect, IMAP and SMTP."""

from __future__ import annotations

from pathlib import Path

import click

from mailflow.cli.options import config_option, load
from mailflow.daemon.checks import start_problems
from mailflow.errors import ProblemsError


@click.command()
@config_option
@click.option("--connect", is_flag=True, help="Also log in to IMAP and SMTP and list folders.")
def check(config_path: Path | None, connect: bool) -> None:
    """Validate config, rules and templates, and that every secret is set."""
    config = load(config_path)
    problems = start_problems(config)
    if problems:
        raise ProblemsError(problems)
    click.echo(f"config {config.source}: ok")
    if not connect:
        return
    from mailflow.daemon.connect import connect_imap, connect_smtp  # the mail clients

    for folder in connect_imap(config):
        state = "ok" if folder.exists else "missing (created at run time)"
        click.echo(f"imap {folder.role}: {folder.name} (found by {folder.how}): {state}")
    greeting = connect_smtp(config)
    click.echo(f"smtp {config.smtp.host}:{config.smtp.port}: ok ({greeting})")


def register(cli: click.Group) -> None:
    cli.add_command(check)
