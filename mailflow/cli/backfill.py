"""`mailflow backfill FOLDER [--since DATE]`: take in a mailbox's history, with a progress bar."""

from __future__ import annotations

import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from mailflow.cli.options import config_option, json_option, load, print_json
from mailflow.daemon import control
from mailflow.daemon.local import backfill_alone
from mailflow.errors import MailflowError
from mailflow.settings.config import Config


def _bar() -> Progress:
    return Progress("[progress.description]{task.description}", BarColumn(),
                    MofNCompleteColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=False)


@click.command()
@config_option
@json_option
@click.argument("folder")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Only messages received on or after this date (YYYY-MM-DD).")
def backfill(config_path: Path | None, as_json: bool, folder: str,
             since: datetime | None) -> None:
    """Take in FOLDER's history (resumable; each message is handled once)."""
    config = load(config_path)
    day = since.date() if since else None
    if control.daemon_running(config.data_dir):
        result = _through_daemon(config.data_dir, folder, day, as_json)
    else:
        result = _alone(config, folder, day)
    if as_json:
        print_json(result)
    else:
        click.echo(f"{result['folder']}: {result['done']} message(s), {result['new']} new")
    if result.get("error"):
        raise MailflowError(result["error"])


def _alone(config: Config, folder: str, day: date | None) -> dict[str, Any]:
    with _bar() as bar:
        task = bar.add_task(folder, total=None)
        return backfill_alone(config, folder, day, lambda done, total: bar.update(
            task, completed=done, total=total))


def _through_daemon(data_dir: Path, folder: str, day: date | None,
                    quiet: bool) -> dict[str, Any]:
    args = {"folder": folder, "since": day.isoformat() if day else None}
    control.call(data_dir, "backfill.start", args)
    with _bar() as bar:
        task = bar.add_task(f"{folder} (daemon)", total=None)
        while True:
            status = control.call(data_dir, "backfill.status", args) or {}
            bar.update(task, completed=status.get("done", 0), total=status.get("total") or None)
            if not status.get("running", True):
                return status
            time.sleep(0.3)


def register(cli: click.Group) -> None:
    cli.add_command(backfill)
