"""`mailflow opening add|list|close|match|model`: openings and the pool ranked for them.

`add`, `close` and `model` change the store: through the running daemon, else here under the
store's lock (the file's openings synced first). `list` and `match` only read: `match` ranks
with the weights `opening model` stored (else the defaults) and an opening of `openings.toml`
the daemon has not taken in yet is ranked from the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mailflow.cli.columns import table
from mailflow.cli.options import (
    carry_out,
    config_option,
    json_option,
    load,
    print_json,
    read_store,
)
from mailflow.clock import default_clock
from mailflow.openings.desk import OpeningDesk
from mailflow.openings.ranking import FEATURES


def _listed(value: str) -> list[str]:
    return [v.strip() for v in value.replace("、", ",").split(",") if v.strip()]


@click.group()
def opening() -> None:
    """Openings: positions to find past candidates for."""


def _desk(service: Any) -> OpeningDesk:
    desk = OpeningDesk(service.store, service.clock, service.config, service.outbox,
                       service.lane)
    desk.sync()
    return desk


@opening.command()
@config_option
@json_option
@click.option("--title", required=True, help="The position's title (職種名).")
@click.option("--skills", default="", help="Required skills, comma-separated.")
@click.option("--qualifications", default="", help="Required qualifications, comma-separated.")
@click.option("--preferred-skills", default="", help="Preferred skills, comma-separated.")
@click.option("--preferred-qualifications", default="",
              help="Preferred qualifications, comma-separated.")
@click.option("--description", default="", help="What the work is.")
@click.option("--location", default="", help="Where.")
def add(config_path: Path | None, as_json: bool, title: str, skills: str, qualifications: str,
        preferred_skills: str, preferred_qualifications: str, description: str,
        location: str) -> None:
    """Add an opening: the pool is ranked and HR gets the shortlist by mail."""
    config = load(config_path)
    args = {"title": title, "description": description, "location": location,
            "required_skills": _listed(skills), "required_qualifications": _listed(qualifications),
            "preferred_skills": _listed(preferred_skills),
            "preferred_qualifications": _listed(preferred_qualifications)}
    done = carry_out(config, "opening.add", args, lambda d: _desk(d).add(args))
    if as_json:
        print_json(done)
        return
    click.echo(f"{done['id']}: {done['title']} added; {done.get('shortlisted', 0)} on the "
               "shortlist mailed to HR")


@opening.command(name="list")
@config_option
@json_option
def list_(config_path: Path | None, as_json: bool) -> None:
    """The openings, open and closed."""
    config = load(config_path)
    store = read_store(config)
    try:
        found = OpeningDesk(store, default_clock(), config, None).all()
    finally:
        store.close()
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("no openings")
        return
    rows = [[o["id"], o.get("state", ""), o.get("source", ""), o.get("title", ""),
             ", ".join(o.get("required_skills") or []) or "-",
             ", ".join(o.get("required_qualifications") or []) or "-"] for o in found]
    for line in table(("ID", "STATE", "FROM", "TITLE", "SKILLS", "QUALIFICATIONS"), rows,
                      (None, None, None, 30, 30, 30)):
        click.echo(line)


@opening.command()
@config_option
@click.argument("opening_id", metavar="ID")
def close(config_path: Path | None, opening_id: str) -> None:
    """Close an opening (one of openings.toml stays closed until its entry changes)."""
    config = load(config_path)
    done = carry_out(config, "opening.close", {"id": opening_id},
                     lambda d: _desk(d).close(opening_id))
    click.echo(f"{done['id']}: closed")


@opening.command()
@config_option
@json_option
@click.argument("opening_id", metavar="ID")
def match(config_path: Path | None, as_json: bool, opening_id: str) -> None:
    """The pool ranked for an opening, best first, each score with its parts."""
    config = load(config_path)
    store = read_store(config)
    try:
        ranking = OpeningDesk(store, default_clock(), config, None).match(opening_id)
    finally:
        store.close()
    if as_json:
        print_json([m.as_json() for m in ranking.matches])
        return
    if not ranking.matches:
        click.echo("no candidate may be proposed")
    rows = [[str(n), m.candidate_id, f"{m.score:.3f}", m.email or "-",
             " ".join(f"{f}={m.parts[f]:.2f}" for f in FEATURES if abs(m.parts[f]) >= 0.005)]
            for n, m in enumerate(ranking.matches, 1)]
    for line in table(("#", "ID", "SCORE", "EMAIL", "PARTS"), rows, (None, None, None, None,
                                                                     None)) if rows else ():
        click.echo(line)
    for why, n in sorted(ranking.left_out.items()):
        click.echo(f"left out: {why}: {n}", err=True)


@opening.command()
@config_option
@json_option
def model(config_path: Path | None, as_json: bool) -> None:
    """Learn the score's weights from outcomes; held-out figures against the defaults."""
    config = load(config_path)
    done = carry_out(config, "opening.model", {}, lambda d: _desk(d).model())
    if as_json:
        print_json(done)
        return
    click.echo(f"{done['examples']} outcomes ({done['positives']} positive)")
    for metric, values in done["held_out"].items():
        click.echo(f"held out: {metric}: learned {values['learned']:.3f}, "
                   f"default {values['default']:.3f}")
    click.echo(f"using the {done['used']} weights: {done['reason']}")
    click.echo("weights: " + ", ".join(f"{k} {v:g}" for k, v in done["weights"].items()))


def register(cli: click.Group) -> None:
    cli.add_command(opening)
