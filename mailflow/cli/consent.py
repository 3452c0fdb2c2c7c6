"""`mailflow consent ID|EMAIL PURPOSE grant|withdraw --how TEXT`: record a candidate's own word
on one purpose of use (APPI), with when and how. Follow-ups check consent again when they are
due, so a withdrawal stops every follow-up for that purpose from then on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mailflow import consent as consents
from mailflow.cli.options import carry_out, config_option, load
from mailflow.clock import Clock, iso
from mailflow.errors import MailflowError
from mailflow.pool import TalentPool
from mailflow.store.base import Store


def record_consent(store: Store, clock: Clock, args: dict[str, Any]) -> dict[str, Any]:
    pool = TalentPool(store, clock)
    with store.transaction():
        candidate = pool.lookup(str(args["candidate"]))
        if candidate is None:
            raise MailflowError(f"no candidate {args['candidate']}")
        granted = args["word"] == "grant"
        entry = consents.record(candidate, str(args["purpose"]), granted, iso(clock.now()),
                                str(args["how"]))
        pool.save(candidate)
        pool.event(candidate["id"], "consent", purpose=args["purpose"], **entry)
    return {"candidate_id": candidate["id"], "purpose": args["purpose"], **entry}


@click.command()
@config_option
@click.argument("candidate")
@click.argument("purpose")
@click.argument("word", type=click.Choice(["grant", "withdraw"]))
@click.option("--how", required=True, help="How the candidate said it (e.g. 'mail 2026-11-20').")
def consent(config_path: Path | None, candidate: str, purpose: str, word: str, how: str) -> None:
    """Record a candidate's consent or withdrawal for one purpose."""
    config = load(config_path)
    args = {"candidate": candidate, "purpose": purpose, "word": word, "how": how}
    done = carry_out(config, "consent.record", args,
                     lambda d: record_consent(d.store, d.clock, args))
    click.echo(f"{done['candidate_id']}: {purpose} {done['state']} ({how})")


def register(cli: click.Group) -> None:
    cli.add_command(consent)
