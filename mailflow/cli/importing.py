"""`mailflow import FILE.csv`: bring in the candidate list kept before mailflow (through the
running daemon, or under the store's writer lock when none runs)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mailflow.cli.options import (
    carry_out,
    config_option,
    json_option,
    load,
    print_json,
    read_store,
)
from mailflow.clock import SystemClock
from mailflow.intake.importer import RowProblem, import_file
from mailflow.profile.dictionary import load_skills


@click.command("import")
@config_option
@json_option
@click.option("--dry-run", is_flag=True, help="Check and report everything; write nothing.")
@click.argument("csv_file", metavar="FILE.csv",
                type=click.Path(path_type=Path, exists=True, dir_okay=False))
def import_(config_path: Path | None, as_json: bool, dry_run: bool, csv_file: Path) -> None:
    """Import a candidate list (CSV: UTF-8 or CP932, header row required)."""
    config = load(config_path)
    path = csv_file.resolve()
    skills = load_skills(config.rules_dir)
    if dry_run:  # writes nothing: a reader's view is enough (empty before the first import)
        store = read_store(config)
        try:
            report = import_file(store, SystemClock(), config.zone, path, dry_run=True,
                                 purposes=config.privacy.purposes, dictionary=skills)
        finally:
            store.close()
    else:
        report = carry_out(config, "import.csv", {"path": str(path), "dry_run": False},
                           lambda d: import_file(d.store, d.clock, config.zone, path,
                                                 purposes=config.privacy.purposes,
                                                 dictionary=skills))
    refused = report["refused"]
    if as_json:
        print_json(report)
    else:
        for item in refused:
            problem = RowProblem(item["row"], item["column"], item["message"])
            click.echo(f"mailflow: error: {problem.problem(str(csv_file))}", err=True)
        if report["ignored_columns"]:
            click.echo(f"ignored columns: {', '.join(report['ignored_columns'])}", err=True)
        rows = len({item["row"] for item in refused})
        would = "would import" if dry_run else "imported"
        click.echo(f"{csv_file}: {would} {report['imported']} row(s) ({report['created']} new, "
                   f"{report['merged']} merged, {report['unchanged']} unchanged); refused "
                   f"{rows} row(s) [{report['encoding']}]")
    if refused:
        sys.exit(1)


def register(cli: click.Group) -> None:
    cli.add_command(import_)
