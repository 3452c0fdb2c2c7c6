"""`mailflow report [--from DATE] [--to DATE] [--json|--csv]`: the KPIs (the dashboard's numbers),
computed by `mailflow.kpi.report.compute`; read-only (no store yet: an empty report)."""

from __future__ import annotations

import csv
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from mailflow.cli.options import config_option, load, print_json, read_store
from mailflow.clock import default_clock
from mailflow.errors import UsageError
from mailflow.kpi.report import MONTHLY, compute

DAY = click.DateTime(["%Y-%m-%d"])
TEXT_ROWS = (
    ("applications", "applications"), ("reapplications", "re-applications"),
    ("rejections", "rejections"), ("invitations", "Career Relay invitations"),
    ("human_clicks", "clicks (people)"), ("scanner_clicks", "clicks (scanners)"),
    ("registrations", "registrations"), ("introductions", "introductions"),
    ("hires_elsewhere", "hired elsewhere"), ("hires", "hires"),
    ("slots_earned", "slots earned"), ("slots_redeemed", "slots redeemed"),
    ("slots_available", "slots available"), ("cost_avoided_yen", "cost avoided (yen)"),
    ("cost_per_hire_yen", "cost per hire (yen)"),
    ("cost_per_hire_change_yen", "change in cost per hire (yen)"),
    ("reapplication_rate", "re-application rate"),
    ("referral_hire_rate", "referral hire rate"), ("retention_3m", "retention 3 months"),
    ("retention_6m", "retention 6 months"), ("retention_12m", "retention 12 months"),
)
SOURCE_COLUMNS = ("applications", "rejections", "reapplications", "registrations", "hires",
                  "retention_3m", "retention_6m", "retention_12m")


def shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1%}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_text(report: dict[str, Any]) -> None:
    span = f"{report['from'] or 'the beginning'} … {report['to'] or report['today']}"
    click.echo(f"KPIs {span} ({report['zone']})")
    for key, label in TEXT_ROWS:
        click.echo(f"  {label:<32}{shown(report[key]):>14}")
    per = report["registrations_per_free_slot"]
    click.echo(f"  {'progress to the next slot':<32}{report['progress_to_next']:>11}/{per}")
    click.echo("\nconversion")
    for key, value in report["conversion"].items():
        click.echo(f"  {key.replace('_', ' '):<32}{shown(value):>14}")
    if report["by_source"]:
        click.echo("\nby source       " + " ".join(f"{c[:12]:>12}" for c in SOURCE_COLUMNS))
        for source, row in report["by_source"].items():
            click.echo(f"  {source[:14]:<14}" + " ".join(f"{shown(row[c]):>12}"
                                                      for c in SOURCE_COLUMNS))
    if report["by_month"]:
        click.echo("\nby month  " + " ".join(f"{c[:12]:>12}" for c in MONTHLY))
        for row in report["by_month"]:
            click.echo(f"  {row['month']:<8}" + " ".join(f"{row[c]:>12}" for c in MONTHLY))


def print_csv(report: dict[str, Any]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(("month", *MONTHLY))
    for row in report["by_month"]:
        writer.writerow((row["month"], *(row[c] for c in MONTHLY)))


@click.command("report")
@config_option
@click.option("--from", "start", type=DAY, default=None, help="first day (local), inclusive")
@click.option("--to", "end", type=DAY, default=None, help="last day (local), inclusive")
@click.option("--json", "as_json", is_flag=True, help="the report as JSON")
@click.option("--csv", "as_csv", is_flag=True, help="one row per month, as CSV")
def report(config_path: Path | None, start: datetime | None, end: datetime | None,
           as_json: bool, as_csv: bool) -> None:
    """The KPIs: applications, rejections, Career Relay, free slots, cost, retention."""
    if as_json and as_csv:
        raise UsageError("--json and --csv: choose one")
    first: date | None = start.date() if start else None
    last: date | None = end.date() if end else None
    if first and last and first > last:
        raise UsageError("--from is after --to")
    config = load(config_path)
    store = read_store(config)
    try:
        figures = compute(store, config, first, last, clock=default_clock())
    finally:
        store.close()
    if as_json:
        print_json(figures)
    elif as_csv:
        print_csv(figures)
    else:
        print_text(figures)


def register(cli: click.Group) -> None:
    cli.add_command(report)
