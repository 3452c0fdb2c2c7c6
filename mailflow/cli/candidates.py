"""`mailflow candidates` and `mailflow candidate show`: the talent pool, read-only."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from pathlib import Path

import click

from mailflow.cli.options import config_option, json_option, load, print_json, read_store
from mailflow.clock import SystemClock
from mailflow.errors import MailflowError
from mailflow.pool.talent import TalentPool, public


def _matches(candidate: Mapping[str, object], term: str) -> bool:
    term = unicodedata.normalize("NFKC", term).lower()
    haystack = " ".join(str(candidate.get(k, "")) for k in
                        ("name", "name_normalized", "emails", "phones", "desired_role", "tags",
                         "skills", "career"))
    return term in unicodedata.normalize("NFKC", haystack).lower()


@click.command()
@config_option
@json_option
@click.option("--search", "term", default=None, help="Name, email, phone, role, tag or skill.")
@click.option("--status", default=None, help="Only candidates with this status.")
def candidates(config_path: Path | None, as_json: bool, term: str | None,
               status: str | None) -> None:
    """The talent pool."""
    config = load(config_path)
    store = read_store(config)
    try:
        found = [public(c) for c in TalentPool(store, SystemClock()).all()
                 if (status is None or c["status"] == status)
                 and (term is None or _matches(c, term))]
    finally:
        store.close()
    if as_json:
        print_json(found)
        return
    for c in found:
        emails = ", ".join(c["emails"])
        click.echo(f"{c['id']}  {c['status']:<9} {c['relay_status']:<12} {c['source']:<10} "
                   f"{c['name']}  <{emails}>")
    click.echo(f"{len(found)} candidate(s)", err=True)


@click.group()
def candidate() -> None:
    """One candidate."""


@candidate.command()
@config_option
@json_option
@click.argument("ref")
def show(config_path: Path | None, as_json: bool, ref: str) -> None:
    """One candidate (by id or email) with the whole timeline."""
    config = load(config_path)
    store = read_store(config)
    try:
        pool = TalentPool(store, SystemClock())
        found = pool.lookup(ref)
        if found is None:
            raise MailflowError(f"no candidate {ref}")
        record = {**public(found), "relay_ref": found.get("relay_ref"),
                  "consents": found.get("consents", {}),
                  "timeline": [{"type": e["type"], "at": e["at"], **e.get("data", {})}
                               for e in pool.timeline(found["id"])]}
    finally:
        store.close()
    if as_json:
        print_json(record)
        return
    for key, value in record.items():
        if key != "timeline":
            click.echo(f"{key}: {value}")
    click.echo("timeline:")
    for event in record["timeline"]:
        click.echo(f"  {event['at']}  {event['type']}")


def register(cli: click.Group) -> None:
    cli.add_command(candidates)
    cli.add_command(candidate)
