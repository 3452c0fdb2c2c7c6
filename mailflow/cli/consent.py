"""`mailflow consent ID|EMAIL PURPOSE grant|withdraw --how TEXT`: record a candidate's own word
on one purpose of use (APPI), with when and how (the admin's reason; who ran it is the evidence,
and the change is in the audit log). Follow-ups check consent again when they are due, so a
withdrawal stops every follow-up for that purpose from then on."""

from __future__ import annotations

from pathlib import Path

import click

from mailflow.cli.options import carry_out, config_option, load
from mailflow.pool.audit import console_actor
from mailflow.pool.talent import TalentPool


@click.command()
@config_option
@click.argument("candidate")
@click.argument("purpose")
@click.argument("word", type=click.Choice(["grant", "withdraw"]))
@click.option("--how", required=True, help="How the candidate said it (e.g. 'mail 2026-11-20').")
def consent(config_path: Path | None, candidate: str, purpose: str, word: str, how: str) -> None:
    """Record a candidate's consent or withdrawal for one purpose."""
    config = load(config_path)
    config.privacy.check_purpose(purpose)  # an unknown one: exit 2, naming the known ones
    args = {"candidate": candidate, "purpose": purpose, "word": word, "how": how,
            "actor": console_actor()}
    done = carry_out(config, "consent.record", args,
                     lambda d: TalentPool(d.store, d.clock).record_consent(args))
    click.echo(f"{done['candidate_id']}: {purpose} {done['state']} ({how})")


def register(cli: click.Group) -> None:
    cli.add_command(consent)
