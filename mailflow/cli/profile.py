"""`mailflow candidate set ID|EMAIL FIELD VALUE` (HR's correction: through the running daemon,
else here under the store's lock; `mailflow.profile.corrections`) and `mailflow pool check
[--json]` (records with gaps or suspected duplicates, read-only; exit 1 when any is listed)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mailflow.cli.candidates import candidate
from mailflow.cli.options import (
    carry_out,
    config_option,
    json_option,
    load,
    print_json,
    read_store,
)
from mailflow.clock import SystemClock
from mailflow.pool.audit import console_actor
from mailflow.pool.talent import TalentPool
from mailflow.profile import corrections
from mailflow.profile.dictionary import load_skills
from mailflow.profile.gaps import pool_gaps


@candidate.command("set")
@config_option
@click.argument("ref", metavar="ID|EMAIL")
@click.argument("field", metavar="FIELD", type=click.Choice(corrections.FIELDS))
@click.argument("value")
def set_(config_path: Path | None, ref: str, field: str, value: str) -> None:
    """Correct a field (lists comma-separated); HR's value wins over what mails say."""
    config = load(config_path)
    skills = load_skills(config.rules_dir)
    corrections.parse_value(field, value, skills)  # a bad value: exit 2 before anything
    args = {"candidate": ref, "field": field, "value": value, "actor": console_actor()}
    done = carry_out(config, "candidate.set", args,
                     lambda d: corrections.set_field(d.store, d.clock, args, skills))
    shown = done["value"] if isinstance(done["value"], str) else ", ".join(done["value"])
    click.echo(f"{done['candidate_id']}: {done['field']} = {shown or '(empty)'} (source hr)")


@click.group()
def pool() -> None:
    """The talent pool as a whole."""


@pool.command("check")
@config_option
@json_option
def check(config_path: Path | None, as_json: bool) -> None:
    """Records with missing contact, source or role, and suspected duplicates."""
    config = load(config_path)
    store = read_store(config)
    try:
        gaps = pool_gaps(TalentPool(store, SystemClock()).all())
    finally:
        store.close()
    if as_json:
        print_json([gap.as_json() for gap in gaps])
    elif not gaps:
        click.echo("the pool has no gaps and no suspected duplicates")
    else:
        for gap in gaps:
            other = f" (with {gap.other})" if gap.other else ""
            click.echo(f"{gap.candidate_id}  {gap.reason}: {gap.detail}{other}")
        click.echo(f"{len(gaps)} finding(s)", err=True)
    if gaps:
        sys.exit(1)


def register(cli: click.Group) -> None:
    """`candidate set` joins the `candidate` group; `pool` is a group of its own."""
    cli.add_command(pool)
