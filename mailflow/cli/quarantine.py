"""`mailflow quarantine list|show ID|replay ID`: what could not be handled, and why."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from mailflow.cli.options import carry_out, config_option, json_option, load, print_json, read_store
from mailflow.errors import MailflowError
from mailflow.mailbox.handoff import STATES, QuarantineItem, quarantine_items


def _public(doc: QuarantineItem) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "raw"}


def _where(item: Mapping[str, Any]) -> str:
    """A mail's folder role and UID, or a partner callback's event id."""
    if item.get("role") == "callback":
        return f"callback:{item.get('event_id')}"
    return f"{item['role']}:{item['uid']}"


@click.group()
def quarantine() -> None:
    """Messages that failed: retrying, quarantined, replayed."""


@quarantine.command("list")
@config_option
@json_option
@click.option("--all", "show_all", is_flag=True, help="Also list replayed ones.")
def list_(config_path: Path | None, as_json: bool, show_all: bool) -> None:
    """Messages still retrying or quarantined, with why (all of them with --all)."""
    config = load(config_path)
    store = read_store(config)
    try:
        states = STATES if show_all else STATES[:2]
        items = [_public(d) for d in quarantine_items(store, states)]
    finally:
        store.close()
    if as_json:
        print_json(items)
        return
    for item in items:
        click.echo(f"{item['id']}  {item['state']:<11} {_where(item)}  "
                   f"attempts={item['attempts']}  {item['reason']}")
    if not items:
        click.echo("quarantine is empty")


@quarantine.command()
@config_option
@json_option
@click.argument("item_id")
def show(config_path: Path | None, as_json: bool, item_id: str) -> None:
    """One quarantined message (by id or key): where it came from, its attempts and why."""
    config = load(config_path)
    store = read_store(config)
    try:
        found = [d for d in quarantine_items(store, STATES) if item_id in (d["id"], d["key"])]
    finally:
        store.close()
    if not found:
        raise MailflowError(f"no quarantined message {item_id}")
    item = _public(found[0])
    if as_json:
        print_json(item)
    else:
        for key, value in item.items():
            click.echo(f"{key}: {value}")


@quarantine.command()
@config_option
@click.argument("item_id")
def replay(config_path: Path | None, item_id: str) -> None:
    """Run a quarantined message through the pipeline again (through the running daemon)."""
    config = load(config_path)
    store = read_store(config)
    try:
        callback = [d for d in quarantine_items(store, STATES)
                    if item_id in (d["id"], d["key"]) and d.get("role") == "callback"]
    finally:
        store.close()
    if callback:
        raise MailflowError(f"{item_id} is a partner callback with an unknown ref: it is "
                            "recorded when the partner delivers it again with a known ref")
    result = carry_out(config, "quarantine.replay", {"id": item_id},
                       lambda d: {k: v for k, v in d.intake.replay(item_id).items() if k != "raw"})
    if result["state"] != "replayed":
        raise MailflowError(f"{item_id}: still failing: {result['reason']}")
    click.echo(f"{item_id}: replayed")


def register(cli: click.Group) -> None:
    cli.add_command(quarantine)
