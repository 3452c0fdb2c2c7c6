"""The command line: a thin layer that loads the config, calls the domain, prints.

Exit codes (INTERFACE.md): 0 success, 1 the thing checked is not right, 2 usage or configuration.
Errors are one line each on stderr, `mailflow: error: …`, never a traceback.
"""

from __future__ import annotations

import os
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]},
             invoke_without_command=True)
@click.version_option(__version__, prog_name="mailflow")
@config_option
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """mailflow: the recruiting mailbox becomes a talent pool; rejections carry Career Relay.

    `-c PATH` may stand before the command or after its name; the one after wins."""
    if ctx.invoked_subcommand is None:  # `mailflow` alone: what there is to do
        click.echo(ctx.get_help())


# click >= 8.2 raises this for a group given no subcommand; older ones print the help and exit
_NO_ARGS_IS_HELP: type[click.ClickException] = getattr(
    click.exceptions, "NoArgsIsHelpError", type("NoArgsIsHelp", (click.ClickException,), {}))


def _register() -> None:
    from mailflow.cli import (
        auth,
        backfill,
        candidates,
        check,
        consent,
        demo,
        explain,
        export,
        importing,
        init,
        ledger,
        outbox,
        outcomes,
        privacy,
        profile,
        provisions,
        quarantine,
        report,
        rewrite,
        rules,
        run,
    )

    for module in (auth, backfill, candidates, check, consent, demo, explain, export, importing,
                   init, ledger, outbox, outcomes, privacy, profile, provisions, quarantine,
                   report, rewrite, rules, run):
        module.register(cli)


def main(argv: list[str] | None = None) -> None:
    os.umask(0o077)  # whatever the shell's umask: what mailflow writes is personal data
    _register()
    try:
        code = cli.main(args=argv, prog_name="mailflow", standalone_mode=False, obj=CliState())
    except click.exceptions.Abort:
        fail("aborted", Exit.USAGE)
    except _NO_ARGS_IS_HELP as exc:  # a group alone (`mailflow quarantine`): its help
        click.echo(exc.format_message(), err=True)
        sys.exit(Exit.USAGE)
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
