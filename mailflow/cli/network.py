"""`mailflow network publish|list|recommend|introduce|hire|status`: the network pool (the seeds'
case D; `mailflow.network` says what is published and who may move an entry).

Every subcommand needs `[network] publish = true` (the company opted in): without it a company
publishes nothing and sees nothing (exit 1). `publish` reads the company's store read-only, and
changes its entry map through the running daemon (or under the writer lock when none runs);
the others change only the network's scope. `--json` prints one JSON document.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mailflow.cli.options import (
    carry_out,
    config_option,
    json_option,
    load,
    print_json,
    print_json_array,
    read_store,
)
from mailflow.clock import SystemClock, iso
from mailflow.network import desk
from mailflow.network.entries import Publication
from mailflow.network.scope import NetworkPool, open_network_store
from mailflow.network.stages import HIRED, INTRODUCED, RECOMMENDED, STAGES, Refused
from mailflow.pool import audit
from mailflow.pool.talent import TalentPool

if TYPE_CHECKING:
    from mailflow.settings.config import Config


@click.group()
def network() -> None:
    """The network pool: publish anonymised candidates, see the others', 推薦 → 紹介 → 採用."""


def _joined(config: Config, read_only: bool) -> NetworkPool:
    if not config.network.publish:
        raise Refused("this company has not opted in to the network pool ([network] publish = "
                      "false): it publishes nothing and sees nothing")
    store = open_network_store(config, read_only)
    try:
        return NetworkPool(store, config.network.id, config.network.company)
    except BaseException:
        store.close()
        raise


def publish_now(config: Config) -> Publication:
    """Publish, update and withdraw this company's entries (`network publish`; `erase` runs it
    too, so an erased person's entry leaves the pool at once)."""
    pool = _joined(config, read_only=False)
    clock = SystemClock()
    actor = audit.console_actor()

    def change_links(add: dict[str, str], drop: list[str], summary: dict[str, int]) -> Any:
        args = {"add": add, "drop": drop, "actor": actor, "summary": summary}
        return carry_out(config, "network.links", args, lambda service: desk.record_links(
            service.store, service.clock, add, drop, actor, summary))

    local = read_store(config)
    try:
        return desk.publish(pool, TalentPool(local, clock).all(), desk.local_links(local),
                            config.privacy.notified_purposes, config.zone, iso(clock.now()),
                            change_links)
    finally:
        local.close()
        pool.store.close()


@network.command()
@config_option
@json_option
def publish(config_path: Path | None, as_json: bool) -> None:
    """Publish, update and withdraw this company's entries (idempotent)."""
    config = load(config_path)
    done = publish_now(config)
    summary = {"network": config.network.id, "company": config.network.company,
               **done.summary()}
    if as_json:
        print_json(summary)
        return
    click.echo(f"network {summary['network']} as {summary['company']}: {done.added} published, "
               f"{done.updated} updated, {done.unchanged} unchanged, {len(done.removals)} "
               f"withdrawn; {done.left_out} left out without an explicit network grant")


@network.command(name="list")
@config_option
@json_option
def list_entries(config_path: Path | None, as_json: bool) -> None:
    """The other members' entries: anonymised fields only, never identities."""
    pool = _joined(load(config_path), read_only=True)
    try:
        if as_json:
            print_json_array(desk.listing(pool))
            return
        count = 0
        for item in desk.listing(pool):
            count += 1
            skills = ", ".join(item["skills"]) or "-"
            click.echo(f"{item['entry']}  {item['company']}  {item['desired_role'] or '-'}  "
                       f"{item['experience']}  {item['prefecture'] or '-'}  {skills}")
        click.echo(f"{count} entr{'y' if count == 1 else 'ies'} from other members", err=True)
    finally:
        pool.store.close()


def _move(config_path: Path | None, as_json: bool, entry: str, stage: str,
          to: str | None) -> None:
    config = load(config_path)
    pool = _joined(config, read_only=False)
    try:
        event = desk.move(pool, entry, stage, to, iso(SystemClock().now()))
    finally:
        pool.store.close()
    if as_json:
        print_json(event)
        return
    said = "recorded" if event["appended"] else "already recorded"
    click.echo(f"{event['stage']} of entry {event['entry']} to {event['to']}: {said}")


@network.command()
@config_option
@click.argument("entry")
@click.option("--to", "to", required=True, metavar="COMPANY",
              help="The member the entry is recommended to.")
@json_option
def recommend(config_path: Path | None, entry: str, to: str, as_json: bool) -> None:
    """推薦: recommend ENTRY to another member."""
    _move(config_path, as_json, entry, RECOMMENDED, to)


@network.command()
@config_option
@click.argument("entry")
@click.option("--to", "to", default=None, metavar="COMPANY",
              help="The member introduced to (default: the one it was recommended to).")
@json_option
def introduce(config_path: Path | None, entry: str, to: str | None, as_json: bool) -> None:
    """紹介: the candidate agreed; their identity goes to the member outside the pool."""
    _move(config_path, as_json, entry, INTRODUCED, to)


@network.command()
@config_option
@click.argument("entry")
@json_option
def hire(config_path: Path | None, entry: str, as_json: bool) -> None:
    """採用: this company hired the candidate of ENTRY, introduced to it."""
    _move(config_path, as_json, entry, HIRED, None)


@network.command()
@config_option
@json_option
def status(config_path: Path | None, as_json: bool) -> None:
    """Each entry's stage across companies, for the entries this company takes part in."""
    config = load(config_path)
    pool = _joined(config, read_only=True)
    local = read_store(config)
    try:
        rows = desk.status(pool, desk.local_links(local))
    finally:
        local.close()
        pool.store.close()
    if as_json:
        print_json(rows)
        return
    for row in rows:
        mine = f"  (candidate {row['candidate_id']})" if row.get("candidate_id") else ""
        click.echo(f"{row['entry']}  {row['publisher']} → {row['company'] or '-'}  "
                   f"{row['stage'] or 'published'}{'' if row['live'] else '  withdrawn'}{mine}")
    reached = Counter(stage for row in rows for stage in row["at"])  # entry and company once
    click.echo("reached: " + ", ".join(f"{reached[stage]} {stage}" for stage in STAGES),
               err=True)


def register(cli: click.Group) -> None:
    cli.add_command(network)
