"""`mailflow rules check | test --at DATETIME [--candidate ID|EMAIL] [--json] | reload |
suggest [--json]`."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from mailflow.cli import Exit, fail
from mailflow.cli.options import config_option, json_option, load, print_json, read_store
from mailflow.clock import SystemClock, iso, parse_iso
from mailflow.daemon import control
from mailflow.daemon.checks import static_problems
from mailflow.errors import MailflowError, ProblemsError, UsageError
from mailflow.followups.preview import preview
from mailflow.followups.rules import load_followups
from mailflow.pool.tags import load_tags
from mailflow.pool.talent import TalentPool


@click.group()
def rules() -> None:
    """Rule files and templates: check them, try the follow-ups, reload the daemon's."""


@rules.command("check")
@config_option
def check_rules(config_path: Path | None) -> None:
    """Validate every rule file (sources, stages, rejection, followups) and the templates."""
    config = load(config_path)
    problems = static_problems(config)
    if problems:
        raise ProblemsError(problems)
    followups = load_followups(config.rules_dir, config.templates_dir)
    tag_rules = load_tags(config.rules_dir)
    click.echo(f"rules in {config.rules_dir}: ok ({len(followups.rules)} follow-up rules, "
               f"{len(tag_rules.rules)} tag rules)")


def parse_at(text: str, zone: ZoneInfo) -> datetime:
    """`2026-01-15`, `2026-01-15T10:00` (local time of rules.timezone) or with an offset."""
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(f"--at {text!r}: expected a date or date and time, e.g. "
                         "2026-01-15 or 2026-01-15T10:00+09:00") from exc
    return parse_iso(iso(at if at.tzinfo else at.replace(tzinfo=zone)))


@rules.command("test")
@config_option
@json_option
@click.option("--at", "at_text", required=True, metavar="DATETIME",
              help="Show follow-ups due by then (local time of rules.timezone unless an offset "
                   "is given).")
@click.option("--candidate", "who", metavar="ID|EMAIL", help="Only this candidate.")
def test_rules(config_path: Path | None, as_json: bool, at_text: str, who: str | None) -> None:
    """Which follow-ups would fire, for whom and when; sends nothing, changes nothing."""
    config = load(config_path)
    followups = load_followups(config.rules_dir, config.templates_dir)
    at = parse_at(at_text, config.zone)
    store = read_store(config)
    try:
        candidate_id = None
        if who:
            found = TalentPool(store, SystemClock()).lookup(who.strip())
            if found is None:
                raise MailflowError(f"no candidate {who}")
            candidate_id = found["id"]
        items = preview(store, config, followups, at, candidate_id)
    finally:
        store.close()
    if as_json:
        print_json(items)
        return
    if not items:
        click.echo(f"no follow-up would be due by {at.astimezone(config.zone):%Y-%m-%d %H:%M}")
        return
    click.echo(f"{'DUE (' + config.rules.timezone + ')':<22}  {'RULE':<24}  {'CANDIDATE':<18}  "
               "WOULD")
    for item in items:
        when = parse_iso(item["due_at"]).astimezone(config.zone)
        what = item["action"] if item["would"] == "fire" else f"skip: {item['reason']}"
        click.echo(f"{when:%Y-%m-%d %H:%M}{'':<6}  {item['rule']:<24}  "
                   f"{item['candidate_id']:<18}  {what}")


@rules.command("reload")
@config_option
def reload_rules(config_path: Path | None) -> None:
    """Make the running daemon load the rule files and templates again (all or nothing: a
    broken file is refused and the rules in force stay)."""
    config = load(config_path)
    problems = static_problems(config)
    if problems:
        raise ProblemsError(problems)
    if not control.daemon_running(config.data_dir):
        fail("no running daemon to reload (rules are loaded when it starts)", Exit.NOT_RIGHT)
    try:
        control.call(config.data_dir, "rules.reload", {})
    except MailflowError as exc:
        for line in str(exc).splitlines():
            click.echo(f"mailflow: error: {line}", err=True)
        sys.exit(exc.exit_code)
    click.echo("rules and templates reloaded")


@rules.command("suggest")
@config_option
@json_option
def suggest_rules(config_path: Path | None, as_json: bool) -> None:
    """Rule changes learned from the cases HR settled with a #mailflow line: phrases that would
    have decided the ones the evidence got wrong, to add to rejection.toml before "recognised"."""
    from mailflow.rejection.recognise.corrections import suggest

    config = load(config_path)
    store = read_store(config)
    try:
        examples = list(store.scan("examples"))
    finally:
        store.close()
    suggestions = suggest(examples)
    wrong = sum(1 for s in suggestions for _ in s.decides)
    if as_json:
        print_json({"examples": len(examples), "suggestions": [s.as_json() for s in suggestions]})
        return
    if not suggestions:
        click.echo(f"{len(examples)} case(s) settled by HR; the evidence decided each as HR did "
                   "or none left a phrase to learn: nothing to suggest")
        return
    click.echo(f"{len(examples)} case(s) settled by HR; {wrong} the evidence got wrong. Add to "
               f"{config.rules_dir / 'rejection.toml'}, before the rule \"recognised\":\n")
    for suggestion in suggestions:
        click.echo(f"# would have decided {', '.join(suggestion.decides)} as "
                   f"{suggestion.decide.replace('_', ' ')}")
        click.echo(suggestion.toml() + "\n")


def register(cli: click.Group) -> None:
    cli.add_command(rules)
