"""`mailflow export --anonymized [--json|--csv] [-o FILE]`: the anonymised talent pool, for the
inter-company pool (issue 18 part 6). What a row holds, and who is in it, is
`mailflow.pool.anonymised`'s docstring.

A read command: the store is opened read-only, so it works while the daemon runs. JSON (an array)
unless `--csv` (a header row, cells guarded against spreadsheet formulas). `-o FILE` is written
owner-only (0600) through a temporary file renamed over it; else stdout. How many were exported,
and how many left out for want of an explicit grant, goes to stderr.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from mailflow.cli.options import carry_out, config_option, json_option, load, read_store
from mailflow.clock import SystemClock
from mailflow.errors import MailflowError, UsageError
from mailflow.pool import audit
from mailflow.pool.anonymised import anonymised_pool, csv_text
from mailflow.pool.talent import TalentPool
from mailflow.settings.private_files import replace_owner_only

ONLY_ANONYMISED = ("only the anonymised export exists: give --anonymized (for everything kept "
                   "about one person, use `mailflow export-person ID|EMAIL DIR`)")


@click.command()
@config_option
@click.option("--anonymized", "--anonymised", "anonymised", is_flag=True,
              help="The anonymised pool: candidates who granted talent_pool, no identifiers.")
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row instead of JSON.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write to FILE (owner-only) instead of stdout.")
def export(config_path: Path | None, anonymised: bool, as_json: bool, as_csv: bool,
           output: Path | None) -> None:
    """Export the anonymised talent pool (consented candidates only)."""
    if not anonymised:
        raise UsageError(ONLY_ANONYMISED)
    if as_json and as_csv:
        raise UsageError("give --json or --csv, not both")
    config = load(config_path)
    store = read_store(config)
    try:
        done = anonymised_pool(TalentPool(store, SystemClock()).all(),
                               config.privacy.notified_purposes, config.zone)
    finally:
        store.close()
    # accountable before anything leaves: no audit entry, no export
    actor = audit.console_actor()
    detail = {"rows": len(done.rows), "format": "csv" if as_csv else "json"}
    carry_out(config, "audit.record", {"actor": actor, "action": "export", "detail": detail},
              lambda service: audit.record(service.store, service.clock, actor, "export", "",
                                           detail))
    text = csv_text(done.rows) if as_csv else json.dumps(
        done.rows, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        try:
            replace_owner_only(output, text.encode("utf-8"))
        except OSError as exc:
            raise MailflowError(f"cannot write {output}: {exc.strerror or exc}") from exc
    click.echo(f"{len(done.rows)} candidate(s) exported; {done.left_out} left out without an "
               "explicit talent_pool grant", err=True)


def register(cli: click.Group) -> None:
    cli.add_command(export)
