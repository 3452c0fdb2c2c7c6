"""The command table: `mailflow --help` lists every command from it without importing one, and
its lines stay those of the commands themselves."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from mailflow.cli import COMMANDS, _register, cli

_register()


def test_the_table_names_every_command_and_no_other() -> None:
    assert sorted(cli.commands) == sorted(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize("limit", [40, 60, 200])
def test_the_tables_line_is_the_commands_own(name: str, limit: int) -> None:
    listed = click.Command(name, help=COMMANDS[name][1])  # as `mailflow --help` shows it
    assert listed.get_short_help_str(limit) == cli.commands[name].get_short_help_str(limit)


def test_help_lists_every_command_and_imports_none() -> None:
    probe = ("import json, sys\n"
             "from mailflow.cli import main\n"
             "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith('mailflow'))))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    help_text, _, loaded = done.stdout.rstrip().rpartition("\n")
    for name in COMMANDS:
        assert f"\n  {name} " in help_text
    modules = set(json.loads(loaded))
    assert modules & {f"mailflow.cli.{m}" for names, _ in COMMANDS.values() for m in names} == set()
    assert not {m for m in modules if m.startswith(("mailflow.daemon", "mailflow.settings"))}


def test_a_command_runs_after_lazy_loading() -> None:
    result = CliRunner().invoke(cli, ["rules", "--help"])
    assert result.exit_code == 0
    assert "check" in result.output
