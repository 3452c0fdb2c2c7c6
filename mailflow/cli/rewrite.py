"""`mailflow rewrite FILE.eml`: preview a rejection rewrite (the decision and a diff).

Without `--record` nothing is written: the store is opened read-only (or not at all when there
is none yet) to look the candidate up, and the link is a throwaway `…/r/preview`. With
`--record`, the rejection is recorded and a real link issued, through the running daemon or
under the store's writer lock (never two writers).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import click

from mailflow.cli import fail
from mailflow.cli.options import carry_out, config_option, json_option, load, print_json
from mailflow.clock import SystemClock
from mailflow.errors import MailflowError, StoreError, UsageError
from mailflow.rejection.rewriting import (
    RewriteSettings,
    as_json,
    record_handler,
    rewrite_rejection,
)
from mailflow.relay.desk import PREVIEW, PreviewDesk
from mailflow.settings.config import Config
from mailflow.store import configured_store
from mailflow.store.base import Store


def read_store(config: Config) -> Store | None:
    try:
        return configured_store(config, read_only=True)
    except StoreError:
        return None  # no store yet: a preview still works with --to-candidate


def preview(config: Config, raw: bytes, to_candidate: str | None) -> dict[str, Any]:
    """The rewrite as it would be, recorded nowhere (also `explain`'s view of Drafts)."""
    settings = RewriteSettings.from_config(config)
    store = read_store(config)
    try:
        desk = PreviewDesk(store, SystemClock(), config.web.public_url, to_candidate)
        result = rewrite_rejection(raw, settings, desk, to_candidate)
        return {**as_json(result), "raw": base64.b64encode(result.raw).decode("ascii"),
                "stand_in": result.candidate_id == PREVIEW}
    finally:
        if store is not None:
            store.close()


def _record(config: Config, raw: bytes, to_candidate: str | None) -> dict[str, Any]:
    args = {"raw": base64.b64encode(raw).decode("ascii"), "to_candidate": to_candidate}
    try:
        answer: dict[str, Any] = carry_out(
            config, "rewrite.record", args,
            lambda daemon: record_handler(config, daemon.store, daemon.clock)(args))
    except MailflowError as exc:
        if str(exc) == "unknown command":
            raise UsageError("the running daemon does not take `rewrite --record`; "
                             "stop it, or preview without --record") from exc
        raise
    return answer


def _print_human(report: dict[str, Any]) -> None:
    decision = report["decision"]
    verdict = {"rejection": "rejection", "not_rejection": "not a rejection",
               "uncertain": "uncertain (left alone; HR is asked to settle it)"}[decision["verdict"]]
    click.echo(f"decision: {verdict}")
    click.echo(f"  rule: {decision['rule']}")
    if decision["evidence"]:
        click.echo(f"  evidence (score {decision['score']:+d}):")
        for item in decision["evidence"]:
            click.echo(f"    {item['weight']:+d} {item['where']} {item['kind']} "
                       f"{item['cue']}: {item['text']}")
    elif decision["score"] is not None:
        click.echo("  evidence: none (nothing reads like a selection result)")
    else:
        click.echo(f"  why: {decision['why']}")
    if decision["phrase"]:
        click.echo(f"  phrase: {decision['phrase']}")
    if decision["tried"]:
        click.echo(f"  tried before: {', '.join(decision['tried'])}")
    if report["candidate_id"]:
        stand_in = " (not in the talent pool: a stand-in)" if report.get("stand_in") else ""
        click.echo(f"candidate: {report['candidate_id']} <{report['candidate_email']}>{stand_in}")
        rescout = {True: "yes", False: "no", None: "not said"}[report["rescout"]]
        click.echo(f"  reason: {report['reason'] or '-'}  stage: {report['stage'] or '-'}  "
                   f"rescout: {rescout}")
    recorded = "recorded" if report["recorded"] else "preview, nothing recorded"
    click.echo(f"result: {report['outcome']}: {report['why']}"
               + (f" ({recorded})" if report["outcome"] == "rewritten" else ""))
    if report["link"]:
        click.echo(f"  link: {report['link']}")
    for change in report["changed"]:
        charset, cte = change["charset"], change["cte"]
        click.echo(f"  {change['part']}: invitation at {change['where']}; charset "
                   f"{charset[0]} -> {charset[1]}, transfer encoding {cte[0]} -> {cte[1]}")
    for problem in report["problems"]:
        click.echo(f"  note: {problem}")
    for change in report["changed"]:
        click.echo(change["diff"])


@click.command()
@config_option
@json_option
@click.argument("eml", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--to-candidate", "to_candidate", default=None, metavar="EMAIL",
              help="Look the candidate up by this address instead of the mail's To.")
@click.option("--record", is_flag=True,
              help="Record the rejection and issue a real link (default: preview only).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the rewritten mail to this file.")
def rewrite(config_path: Path | None, as_json: bool, eml: Path, to_candidate: str | None,
            record: bool, output: Path | None) -> None:
    """Preview a rejection rewrite: the decision and a diff of the changed parts."""
    config = load(config_path)
    raw = eml.read_bytes()
    report = _record(config, raw, to_candidate) if record else preview(config, raw, to_candidate)
    new_raw = base64.b64decode(report.pop("raw"))
    if output is not None:
        output.write_bytes(new_raw)
    if as_json:
        print_json(report)
    else:
        _print_human(report)
    if report["outcome"] == "refused":
        fail(f"{eml}: refused: {'; '.join(report['problems'])}")


def register(cli: click.Group) -> None:
    cli.add_command(rewrite)
