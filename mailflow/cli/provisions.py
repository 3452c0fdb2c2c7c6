"""`mailflow provisions [--candidate ID|EMAIL] [--json]`: the records of provision to third parties
(APPI 法29) — each hand-over of a candidate's profile to Career Relay: which items, to whom,
when, and the consent it rested on (`relay.handover`). Read-only.

`--json` prints an array, oldest first, of `{"id", "candidate_id", "items", "recipient",
"recipient_host", "at", "consent", "ref", "event_id", "delivered"}` (`delivered` is true, or
"unknown" for an attempt whose answer never came).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mailflow.cli.options import config_option, json_option, load, print_json, read_store
from mailflow.clock import SystemClock
from mailflow.errors import MailflowError
from mailflow.pool.talent import TalentPool


def _basis(record: dict[str, Any]) -> str:
    given = record.get("consent") or {}
    how = given.get("how") or given.get("basis") or "-"
    evidence = given.get("evidence")
    return f"{how} ({evidence})" if evidence else str(how)


@click.command()
@config_option
@json_option
@click.option("--candidate", "who", metavar="ID|EMAIL", help="Only this candidate's.")
def provisions(config_path: Path | None, as_json: bool, who: str | None) -> None:
    """Records of provision of personal data to Career Relay."""
    config = load(config_path)
    store = read_store(config)
    try:
        if who:
            found = TalentPool(store, SystemClock()).lookup(who.strip())
            if found is None:
                raise MailflowError(f"no candidate {who}")
            records = store.find("provisions", "candidate_id", found["id"])
        else:
            records = list(store.scan("provisions"))
    finally:
        store.close()
    records.sort(key=lambda r: (str(r.get("at")), str(r.get("id"))))
    if as_json:
        print_json(records)
        return
    if not records:
        click.echo("no personal data has been provided to a third party")
        return
    for r in records:
        delivered = "" if r.get("delivered") is True else " (delivery unknown)"
        click.echo(f"{str(r['at'])[:19].replace('T', ' ')}  {r['candidate_id']}  "
                   f"{r['recipient']} ({r.get('recipient_host') or '-'}){delivered}  "
                   f"items: {', '.join(r['items'])}  consent: {_basis(r)}")


def register(cli: click.Group) -> None:
    cli.add_command(provisions)
