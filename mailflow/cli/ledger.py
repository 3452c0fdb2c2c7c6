"""`mailflow ledger [--json]`, `ledger history [--json]`, `ledger redeem --note TEXT`,
`ledger verify`, `ledger export --csv`: the referral ledger."""

from __future__ import annotations

import csv
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from mailflow.cli.options import carry_out, config_option, json_option, load, print_json, read_store
from mailflow.clock import SystemClock
from mailflow.errors import MailflowError, UsageError
from mailflow.relay.accounting import Balance
from mailflow.relay.ledger import ReferralLedger, read_entries
from mailflow.settings.config import Config
from mailflow.spreadsheets import csv_cell

EXPORT_COLUMNS = ("seq", "kind", "at", "event_id", "ref", "occurred_at", "counted_delta",
                  "registrations", "progress", "slots_earned", "slots_redeemed",
                  "slots_available", "note", "hash")
LABELS = {"registration": "registration credited", "slot_earned": "slot earned",
          "slot_redeemed": "slot redeemed", "correction": "correction (withdrawn)"}


def _ledger(config: Config) -> tuple[ReferralLedger, Any]:
    store = read_store(config)
    return ReferralLedger.from_config(store, SystemClock(), config), store


def _balance(config: Config) -> Balance:
    ledger, store = _ledger(config)
    try:
        return ledger.balance()
    finally:
        store.close()


@click.group(invoke_without_command=True)
@config_option
@json_option
@click.pass_context
def ledger(ctx: click.Context, config_path: Path | None, as_json: bool) -> None:
    """The referral ledger: registrations, free slots earned and redeemed (verified)."""
    if ctx.invoked_subcommand is not None:
        return
    config = load(config_path)
    balance = _balance(config)
    if as_json:
        print_json(balance.public())
    else:
        per = balance.registrations_per_free_slot
        value = balance.slots_available * config.career_relay.slot_value_yen
        click.echo(f"registrations    {balance.registrations}")
        click.echo(f"progress         {balance.progress_to_next}/{per} towards the next slot")
        click.echo(f"slots earned     {balance.slots_earned}")
        click.echo(f"slots redeemed   {balance.slots_redeemed}")
        click.echo(f"slots available  {balance.slots_available} (about {value:,} yen)")
        click.echo(f"verified         {'yes' if balance.verified else 'NO'}")
    if balance.problem:
        raise MailflowError(balance.problem)


@ledger.command()
@config_option
@json_option
def history(config_path: Path | None, as_json: bool) -> None:
    """Every entry, oldest first (as stored: run `ledger verify` to check them)."""
    config = load(config_path)
    store = read_store(config)
    try:
        entries = [e for _seq, e in read_entries(store) if e is not None]
    finally:
        store.close()
    if as_json:
        print_json(entries)
        return
    if not entries:
        click.echo("the ledger is empty")
        return
    click.echo(f"{'SEQ':>5}  {'AT':<20}  {'ENTRY':<22}  {'REGS':>5}  {'SLOTS':>5}  "
               f"{'USED':>4}  EVENT / NOTE")
    for entry in entries:
        balance = entry.get("balance") or {}
        what = entry.get("note") or " ".join(
            str(entry[k]) for k in ("event_id", "ref") if entry.get(k))
        if entry["kind"] == "slot_redeemed" and entry.get("candidate_id"):
            what += f" → hire of {entry['candidate_id']}"  # which hire the slot paid for
        click.echo(f"{entry['seq']:>5}  {str(entry['at'])[:19]:<20}  "
                   f"{LABELS.get(entry['kind'], entry['kind']):<22}  "
                   f"{balance.get('registrations', ''):>5}  {balance.get('slots_earned', ''):>5}  "
                   f"{balance.get('slots_redeemed', ''):>4}  {what}")


@ledger.command()
@config_option
@click.option("--note", required=True, help="What the slot was used for (kept in the entry).")
def redeem(config_path: Path | None, note: str) -> None:
    """Use one free slot (exit 1, changing nothing, when none is available)."""
    if not note.strip():
        raise UsageError("--note must say what the slot was used for")
    config = load(config_path)
    result = carry_out(config, "ledger.redeem", {"note": note},
                       lambda d: d.ledger.redeem(note))
    click.echo(f"slot redeemed (entry {result['seq']}); {result['slots_available']} left")


@ledger.command()
@config_option
def verify(config_path: Path | None) -> None:
    """Check every entry's hash and chain, the rules, and the sealed head (exit 1 on the first
    bad entry)."""
    config = load(config_path)
    ledger_, store = _ledger(config)
    try:
        replay = ledger_.audit()
    finally:
        store.close()
    if replay.problem is not None:
        raise replay.problem
    click.echo(f"ledger verified: {replay.entries} entries, head sealed"
               if replay.entries else "ledger verified: empty")


@ledger.command()
@config_option
@click.option("--csv", "as_csv", is_flag=True, required=True,
              help="CSV on stdout, one row per entry (for reconciliation with the partner).")
def export(config_path: Path | None, as_csv: bool) -> None:
    """Every entry as CSV, after verifying the ledger (exit 1 when it does not verify)."""
    config = load(config_path)
    ledger_, store = _ledger(config)
    try:
        replay = ledger_.audit()
        if replay.problem is not None:
            raise replay.problem
        entries = [e for _seq, e in read_entries(store) if e is not None]
    finally:
        store.close()
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for entry in entries:
        writer.writerow([csv_cell(_cell(entry, column)) for column in EXPORT_COLUMNS])


def _cell(entry: Mapping[str, Any], column: str) -> Any:
    """One CSV cell of an entry (`column` names an entry's key or one of its balance)."""
    balance = entry.get("balance") or {}
    if column == "slots_available":
        return int(balance["slots_earned"]) - int(balance["slots_redeemed"])
    value = balance[column] if column in balance else entry.get(column)
    return "" if value is None else value


def register(cli: click.Group) -> None:
    cli.add_command(ledger)
