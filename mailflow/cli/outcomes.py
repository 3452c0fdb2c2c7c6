"""`mailflow candidate hire ID|EMAIL --on DATE [--position P] [--via slot|agency|direct|referral|
reapplication]` and `mailflow candidate left ID|EMAIL --on DATE`: outcomes, for the report's hires,
紹介採用率 and retention (定着). Write commands: through the running daemon, else here under the
store's lock (`mailflow.kpi.outcomes`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from mailflow.cli.candidates import candidate
from mailflow.cli.options import carry_out, config_option, load
from mailflow.kpi import outcomes
from mailflow.pool.audit import console_actor
from mailflow.pool.talent import HIRE_VIAS

DAY = click.DateTime(["%Y-%m-%d"])


@candidate.command()
@config_option
@click.argument("ref", metavar="ID|EMAIL")
@click.option("--on", "on", type=DAY, required=True, help="the hire date (YYYY-MM-DD)")
@click.option("--position", default="", help="the position (default: the last applied for)")
@click.option("--via", type=click.Choice(HIRE_VIAS), default=None,
              help="how the hire came about; slot redeems a free referral slot "
                   "(default: reapplication for a candidate who re-applied, else direct)")
def hire(config_path: Path | None, ref: str, on: datetime, position: str,
         via: str | None) -> None:
    """Record a hire (with --via slot, paid for by a free referral slot)."""
    config = load(config_path)
    args = {"candidate": ref, "on": on.date().isoformat(), "position": position,
            "via": via or "", "actor": console_actor()}
    done = carry_out(config, "candidate.hire", args,
                     lambda d: outcomes.hire(d.store, d.clock, d.ledger, args))
    paid = f"; free slot redeemed (ledger entry {done['slot_seq']}), " \
           f"{done['slots_available']} left" if done.get("slot_seq") else ""
    click.echo(f"{done['candidate_id']}: hired on {done['on']} via {done['via']}{paid}")


@candidate.command()
@config_option
@click.argument("ref", metavar="ID|EMAIL")
@click.option("--on", "on", type=DAY, required=True, help="the last day (YYYY-MM-DD)")
def left(config_path: Path | None, ref: str, on: datetime) -> None:
    """Record that a person hired left (for retention)."""
    config = load(config_path)
    args = {"candidate": ref, "on": on.date().isoformat(), "actor": console_actor()}
    done = carry_out(config, "candidate.left", args,
                     lambda d: outcomes.left(d.store, d.clock, args, d.lane))
    click.echo(f"{done['candidate_id']}: left on {done['left_on']} (hired on {done['on'][:10]})")


def register(cli: click.Group) -> None:
    """The commands join the `candidate` group (registered by `candidates`)."""
