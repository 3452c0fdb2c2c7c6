"""The command line: a thin layer that loads the config, calls the domain, prints.

Exit codes (INTERFACE.md): 0 success, 1 the thing checked is not right, 2 usage or configuration.
Errors are one line each on stderr, `mailflow: error: …`, never a traceback.
"""

from __future__ import annotations

import sys
from enum import IntEnum
from pathlib import Path

import click

from mailflow import __version__
from mailflow.cli.options import CliState, config_option
from mailflow.errors import MailflowError, ProblemsError


class Exit(IntEnum):
    OK = 0
    NOT_RIGHT = 1
    USAGE = 2


def fail(message: str, code: Exit = Exit.NOT_RIGHT) -> None:
    click.echo(f"mailflow: error: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mailflow")
def cli() -> None:
    """mailflow: the recruiting mailbox becomes a talent pool; rejections carry Career Relay."""


def _register() -> None:
    from mailflow.cli import (
        auth,
        backfill,
        candidates,
        check,
        consent,
        demo,
        explain,
        importing,
        ledger,
        outbox,
        quarantine,
        rewrite,
        rules,
        run,
    )

    for module in (auth, backfill, candidates, check, consent, demo, explain, importing, ledger,
                   outbox, quarantine, rewrite, rules, run):
        module.register(cli)


def main(argv: list[str] | None = None) -> None:
    _register()
    try:
        code = cli.main(args=argv, prog_name="mailflow", standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", Exit.USAGE)
    except click.ClickException as exc:
        click.echo(f"mailflow: error: {exc.format_message()}", err=True)
        sys.exit(Exit.USAGE)
    except ProblemsError as exc:
        for problem in exc.problems:
            click.echo(f"mailflow: error: {problem}", err=True)
        sys.exit(exc.exit_code)
    except MailflowError as exc:
        fail(str(exc), Exit(exc.exit_code))
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
