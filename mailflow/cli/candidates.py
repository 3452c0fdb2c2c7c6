"""`mailflow candidates` and `mailflow candidate show`: the talent pool, read-only.

Human output is a table with a header row (`candidates`) and a card (`candidate show`, see
`cli.card`); `--json` is the interface's document, unchanged.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from mailflow.cli.card import card
from mailflow.cli.columns import table
from mailflow.cli.options import (
    config_option,
    json_option,
    load,
    print_json,
    print_json_array,
    read_store,
)
from mailflow.clock import SystemClock
from mailflow.errors import MailflowError
from mailflow.followups.vocabulary import STATUSES
from mailflow.pool.talent import TalentPool, public
from mailflow.profile.provenance import by_value

HEADERS = ("ID", "STATUS", "RELAY", "SOURCE", "NAME", "POSITION", "EMAIL")
LIMITS = (None, None, None, 12, 20, 24, None)  # cells; the emails are never cut


def _matches(candidate: Mapping[str, object], term: str) -> bool:
    term = unicodedata.normalize("NFKC", term).lower()
    haystack = " ".join(str(candidate.get(k, "")) for k in
                        ("name", "name_normalized", "emails", "phones", "desired_role", "tags",
                         "skills", "career"))
    return term in unicodedata.normalize("NFKC", haystack).lower()


def _row(c: Mapping[str, Any]) -> list[str]:
    applications = c.get("applications") or []
    position = (applications[-1].get("position") if applications else "") or c.get(
        "desired_role") or "-"
    return [c["id"], c["status"], str(c["relay_status"]).replace("_", " "), c["source"] or "-",
            c["name"] or "-", position, ", ".join(c["emails"]) or "-"]


@click.command()
@config_option
@json_option
@click.option("--search", "term", default=None, help="Name, email, phone, role, tag or skill.")
@click.option("--status", type=click.Choice(STATUSES), default=None,
              help="Only candidates with this status.")
def candidates(config_path: Path | None, as_json: bool, term: str | None,
               status: str | None) -> None:
    """The talent pool."""
    config = load(config_path)
    store = read_store(config)
    try:
        chosen = (public(c) for c in TalentPool(store, SystemClock()).all()
                  if (status is None or c["status"] == status)
                  and (term is None or _matches(c, term)))
        if as_json:
            print_json_array(chosen)
            return
        found = list(chosen)
    finally:
        store.close()
    if not found:
        click.echo("no candidate matches" if term or status else "the talent pool is empty")
        return
    for line in table(HEADERS, [_row(c) for c in found], LIMITS):
        click.echo(line)
    click.echo(f"{len(found)} candidate(s)", err=True)


@click.group()
def candidate() -> None:
    """One candidate: show the record and its timeline."""


@candidate.command()
@config_option
@json_option
@click.argument("ref", metavar="ID|EMAIL")
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
                  "consents": found.get("consents", {}), "hires": found.get("hires", []),
                  "reapply_intent": found.get("reapply_intent"),
                  "rule_tags": found.get("rule_tags", []),
                  "profile": by_value(found), "provenance": found.get("provenance", []),
                  "timeline": [{"type": e["type"], "at": e["at"], **e.get("data", {})}
                               for e in pool.timeline(found["id"])]}
    finally:
        store.close()
    if as_json:
        print_json(record)
        return
    for line in card(record, config.zone):
        click.echo(line)


def register(cli: click.Group) -> None:
    cli.add_command(candidates)
    cli.add_command(candidate)
