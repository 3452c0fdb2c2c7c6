"""`mailflow store migrate --to postgresql`: move a SQLite or TinyDB store into PostgreSQL, so a
company that grows does not start over (`mailflow.store.migrate` does the copy).

The daemon must be stopped (the source store's writer lock is taken for the copy). The target's
connection string comes from the variable `[store] dsn_env` names. Idempotent and resumable:
run it again after an interruption. Verified: every kind's count in both stores, every log entry
the same, and the referral ledger's chain and seal on PostgreSQL. Then set
`[store] engine = "postgresql"` and start the daemon.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

import click

from mailflow.cli.options import config_option, json_option, load, print_json
from mailflow.clock import SystemClock
from mailflow.errors import MailflowError, UsageError
from mailflow.relay.ledger import ReferralLedger
from mailflow.store import holder_of, open_store
from mailflow.store.migrate import Source, copy_store
from mailflow.store.postgresql import PostgresStore


@click.group()
def store() -> None:
    """The store: move it to another engine."""


@store.command()
@config_option
@json_option
@click.option("--to", "engine", type=click.Choice(["postgresql"]), required=True,
              help="The engine to copy the store into.")
def migrate(config_path: Path | None, as_json: bool, engine: str) -> None:
    """Copy this store into PostgreSQL (idempotent, resumable, verified); stop the daemon first."""
    from mailflow.daemon import control

    config = load(config_path)
    if config.store.engine == engine:
        raise UsageError(f"the store is already {engine} ([store] engine)")
    dsn = config.secret("store.dsn_env")
    if control.daemon_running(config.data_dir):
        raise MailflowError("the daemon is running: stop it first (the copy must see a store "
                            "nobody writes)")
    source = open_store(config.data_dir, config.store.engine)
    try:
        target = PostgresStore(dsn, company=config.company.id,  # into this company's rows
                               holder=holder_of(config))
        try:
            copied = copy_store(cast(Source, source), target, _progress)
            problem = ReferralLedger.from_config(target, SystemClock(), config).verify()
        finally:
            target.close()
    finally:
        source.close()
    report = {"to": engine, "where": target.where, "counts": {
        kind: {"source": s, "target": t} for kind, (s, t) in copied.counts.items()},
        "same_counts": copied.same, "ledger_verified": problem is None}
    if as_json:
        print_json(report)
    else:
        for kind, (s, t) in copied.counts.items():
            if s or t:
                click.echo(f"{kind:<12} {s:>9,} → {t:>9,}{'' if s == t else '  DIFFERENT'}")
        click.echo(f"ledger on {target.where}: "
                   f"{'verified' if problem is None else f'NOT verified: {problem}'}")
        if copied.same and problem is None:
            click.echo(f'copied; set [store] engine = "{engine}" and start the daemon')
    if not (copied.same and problem is None):
        sys.exit(1)


def _progress(kind: str, done: int) -> None:
    if done % 5000 == 0:
        click.echo(f"store migrate: {kind} {done:,}", err=True)


def register(cli: click.Group) -> None:
    cli.add_command(store)
