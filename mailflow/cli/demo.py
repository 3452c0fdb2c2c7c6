"""`mailflow demo`: everything on one machine with no account."""

from __future__ import annotations

from pathlib import Path

import click

from mailflow.demo import Demo


@click.command()
@click.option("--dir", "workdir", type=click.Path(path_type=Path, file_okay=False),
              default=Path(".demo"), show_default=True, help="Where the demo keeps its data.")
def demo(workdir: Path) -> None:
    """Run the embedded demo: IMAP server, SMTP sink, the daemon and sample mails."""
    Demo(workdir.resolve(), lambda line: click.echo(line)).run()


def register(cli: click.Group) -> None:
    cli.add_command(demo)
