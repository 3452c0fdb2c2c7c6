"""`mailflow outbox [--all] [--json]` (or `outbox list`), `outbox resend ID`,
`outbox mark-sent ID`: outgoing mail."""

from __future__ import annotations

from pathlib import Path

import click

from mailflow.cli.columns import clip, pad
from mailflow.cli.options import carry_out, config_option, json_option, load, print_json, read_store
from mailflow.outgoing.records import STATES, PublicOutboxItem, public

OPEN_STATES = ("unknown", "failed", "queued", "sending")


def _when(doc: PublicOutboxItem) -> str:
    if doc["state"] == "queued":
        return f"next {doc['next_at'][:19]}Z"
    if doc["state"] == "sent":
        return f"sent {(doc.get('sent_at') or '')[:19]}Z"
    return f"since {doc['updated_at'][:19]}Z"


ALL_HELP = "Also list mail already sent."


@click.group(invoke_without_command=True)
@config_option
@json_option
@click.option("--all", "show_all", is_flag=True, help=ALL_HELP)
@click.pass_context
def outbox(ctx: click.Context, config_path: Path | None, as_json: bool, show_all: bool) -> None:
    """Outgoing mail and its states (unknown and failed ones first: they wait for you)."""
    if ctx.invoked_subcommand is None:
        _list(config_path, as_json, show_all)


@outbox.command("list")
@config_option
@json_option
@click.option("--all", "show_all", is_flag=True, help=ALL_HELP)
def list_(config_path: Path | None, as_json: bool, show_all: bool) -> None:
    """Outgoing mail and its states (the same as `mailflow outbox`)."""
    _list(config_path, as_json, show_all)


def _list(config_path: Path | None, as_json: bool, show_all: bool) -> None:
    config = load(config_path)
    store = read_store(config)
    try:
        states = STATES if show_all else OPEN_STATES
        order = {state: n for n, state in enumerate((*OPEN_STATES, "sent"))}
        items = sorted((public(d) for s in states for d in store.find("outbox", "state", s)),
                       key=lambda d: (order[d["state"]], d["created_at"]))
    finally:
        store.close()
    if as_json:
        print_json(items)
        return
    if not items:
        click.echo("outbox is empty" if show_all else "nothing waiting in the outbox")
        return
    click.echo(f"{'ID':<10}  {'STATE':<7}  {'TRIES':>5}  {'PURPOSE':<16}  {'WHEN':<26}  TO / ERROR")
    for item in items:
        gone = {u["address"] for u in item.get("undeliverable", [])}
        to = ", ".join(f"{a} (undeliverable)" if a in gone else a for a in item["to"])
        click.echo(f"{item['id']:<10}  {item['state']:<7}  {item['attempts']:>5}  "
                   f"{pad(clip(item['purpose'], 16), 16)}  {_when(item):<26}  {to}")
        if item.get("last_error"):
            click.echo(f"{'':<10}  {item['last_error']}")


@outbox.command()
@config_option
@click.argument("record_id", metavar="ID")
def resend(config_path: Path | None, record_id: str) -> None:
    """Send an unknown or failed mail again (same Message-ID)."""
    config = load(config_path)
    carry_out(config, "outbox.resend", {"id": record_id},
              lambda d: d.outbox.resend(record_id))
    click.echo(f"{record_id}: queued again")


@outbox.command("mark-sent")
@config_option
@click.argument("record_id", metavar="ID")
def mark_sent(config_path: Path | None, record_id: str) -> None:
    """Record that a mail went out: mailflow never sends it (again)."""
    config = load(config_path)
    carry_out(config, "outbox.mark_sent", {"id": record_id},
              lambda d: d.outbox.mark_sent(record_id))
    click.echo(f"{record_id}: marked sent")


def register(cli: click.Group) -> None:
    cli.add_command(outbox)
