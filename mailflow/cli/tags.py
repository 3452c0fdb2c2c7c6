"""`mailflow tag ID|EMAIL add|remove TAG`: HR's own tags; `mailflow intent ID|EMAIL yes|no`:
the re-application intent the candidate told HR (how "hr"). A tag HR adds stays until HR removes
it (rules/tags.toml never takes it away); a rule's tag HR removes is not given again by the
rules until HR adds it back. Each change is on the candidate's timeline and in the audit log."""

from __future__ import annotations

from pathlib import Path

import click

from mailflow.cli.options import carry_out, config_option, json_option, load, print_json
from mailflow.pool.audit import console_actor
from mailflow.pool.intent import hr_intent
from mailflow.pool.tagging import hr_tag, valid_tag


@click.command()
@config_option
@json_option
@click.argument("candidate", metavar="ID|EMAIL")
@click.argument("action", type=click.Choice(["add", "remove"]))
@click.argument("tag")
def tag(config_path: Path | None, as_json: bool, candidate: str, action: str, tag: str) -> None:
    """Add or remove one of a candidate's tags."""
    config = load(config_path)
    args = {"candidate": candidate, "action": action, "tag": valid_tag(tag),
            "actor": console_actor()}
    done = carry_out(config, "tag.change", args, lambda d: hr_tag(d.store, d.clock, args))
    if as_json:
        print_json(done)
        return
    what = ("added" if action == "add" else "removed") if done["changed"] else "unchanged"
    click.echo(f"{done['candidate_id']}: {done['tag']} {what}; tags: "
               f"{', '.join(done['tags']) or '(none)'}")


@click.command()
@config_option
@json_option
@click.argument("candidate", metavar="ID|EMAIL")
@click.argument("wish", type=click.Choice(["yes", "no"]))
@click.option("--note", default="", help="How the candidate said it (e.g. 'phone 2026-11-20').")
def intent(config_path: Path | None, as_json: bool, candidate: str, wish: str, note: str) -> None:
    """Record whether the candidate wishes to hear about future openings, as they told HR."""
    config = load(config_path)
    args = {"candidate": candidate, "wish": wish, "note": note, "actor": console_actor()}
    done = carry_out(config, "intent.record", args, lambda d: hr_intent(d.store, d.clock, args))
    if as_json:
        print_json(done)
        return
    click.echo(f"{done['candidate_id']}: re-application intent {wish}"
               + ("" if done["changed"] else " (already recorded)"))


def register(cli: click.Group) -> None:
    cli.add_command(tag)
    cli.add_command(intent)
