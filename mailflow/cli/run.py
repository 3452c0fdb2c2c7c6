"""`mailflow run`: the daemon in the foreground."""

from __future__ import annotations

from pathlib import Path

import click

from mailflow import logs
from mailflow.cli.options import config_option, load
from mailflow.daemon.checks import start_problems
from mailflow.daemon.local import serve
from mailflow.errors import ProblemsError


@click.command()
@config_option
@click.option("--log-format", type=click.Choice(["plain", "json", "journal"]), default="plain",
              show_default=True, help="Log lines as text, one JSON object per line, or for "
                                      "journald (<N> priority, no timestamp; chosen by itself "
                                      "under systemd).")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING"]), default="INFO",
              show_default=True, help="The least important lines logged.")
def run(config_path: Path | None, log_format: str, log_level: str) -> None:
    """Run the daemon (SIGTERM/SIGINT stop, SIGHUP reloads rules and templates)."""
    config = load(config_path)
    problems = start_problems(config)  # every missing secret too, before opening anything
    if problems:
        raise ProblemsError(problems)
    logs.setup(log_format, log_level)
    serve(config)


def register(cli: click.Group) -> None:
    cli.add_command(run)
