"""The command line: a thin layer that loads the config, calls the domain, prints.

Exit codes (INTERFACE.md): 0 success, 1 the thing checked is not right, 2 usage or configuration.
Errors are one line each on stderr, `mailflow: error: …`, never a traceback.
"""

from __future__ import annotations

import importlib
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


# Every command: the modules that add it (in order: `candidate` gains `hire` and `left` from
# `outcomes`) and its line in `mailflow --help`. A command's module is imported only when the
# command runs, so `mailflow --help` and `mailflow check` do not load the daemon, the web edge
# and every domain package (tests/test_cli_lazy.py keeps these lines equal to the commands' own).
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "auth": (("auth",), "OAuth 2.0 for Google Workspace and Microsoft 365."),
    "backfill": (("backfill",),
                 "Take in FOLDER's history (resumable; each message is handled once)."),
    "candidate": (("candidates", "outcomes", "profile"),
                  "One candidate: show the record and its timeline."),
    "candidates": (("candidates",), "The talent pool."),
    "check": (("check",), "Validate config, rules and templates, and that every secret is set."),
    "consent": (("consent",), "Record a candidate's consent or withdrawal for one purpose."),
    "demo": (("demo",),
             "Run the embedded demo: IMAP server, SMTP sink, the daemon and sample mails."),
    "erase": (("privacy",), "Erase one person's personal data everywhere mailflow keeps it."),
    "explain": (("explain",),
                "What mailflow would do with this mail in that folder, and why; changes nothing."),
    "export": (("export",), "Export the anonymised talent pool (consented candidates only)."),
    "export-person": (("privacy",), "Write everything kept about one person into FOLDER (new or "
                      "empty), owner-only."),
    "import": (("importing",),
               "Import a candidate list (CSV: UTF-8 or CP932, header row required)."),
    "init": (("init",), "Write a starter site for a new company: config, rules, templates, "
             ".env.example."),
    "ledger": (("ledger",), "The referral ledger: registrations, free slots earned and redeemed "
               "(verified)."),
    "network": (("network",), "The network pool: publish anonymised candidates, see the "
                "others', 推薦 → 紹介 → 採用."),
    "opening": (("opening",), "Openings: positions to find past candidates for."),
    "outbox": (("outbox",), "Outgoing mail and its states (unknown and failed ones first: they "
               "wait for you)."),
    "pool": (("profile",), "The talent pool as a whole."),
    "provisions": (("provisions",), "Records of provision of personal data to Career Relay."),
    "purge": (("privacy",), "Remove what is past its retention period (candidates, attachments, "
              "quarantine, bodies)."),
    "store": (("store",), "The store: move it to another engine."),
    "tag": (("tags",), "Add or remove one of a candidate's tags."),
    "intent": (("tags",), "Record whether the candidate wishes to hear about future openings, "
               "as they told HR."),
    "quarantine": (("quarantine",), "Messages that failed: retrying, quarantined, replayed."),
    "report": (("report",), "The KPIs: applications, rejections, Career Relay, free slots, cost, "
               "retention."),
    "rewrite": (("rewrite",),
                "Preview a rejection rewrite: the decision and a diff of the changed parts."),
    "rules": (("rules",), "Rule files and templates: check them, try the follow-ups, reload the "
              "daemon's."),
    "run": (("run",), "Run the daemon (SIGTERM/SIGINT stop, SIGHUP reloads rules and templates)."),
}


class Commands(click.Group):
    """The top-level group, its commands imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            for module in COMMANDS[cmd_name][0]:
                importlib.import_module(f"mailflow.cli.{module}").register(self)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The list in `--help` from the table, without importing a command."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        listed = {name: click.Command(name, help=line) for name, (_, line) in COMMANDS.items()}
        listed |= self.commands
        rows = [(name, listed[name].get_short_help_str(limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]},
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
    """Every command at once (the docs' checks walk the whole tree)."""
    for name in COMMANDS:
        cli.get_command(click.Context(cli), name)


def main(argv: list[str] | None = None) -> None:
    os.umask(0o077)  # whatever the shell's umask: what mailflow writes is personal data
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
