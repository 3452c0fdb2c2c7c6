"""`mailflow explain FILE.eml [--folder inbox|sent|drafts|outbox] [--json]`: what mailflow would do
with this mail in that folder, and why — touching nothing.

The same planning functions the daemon runs: INBOX `intake.plan.plan_inbox` (classification,
the candidate it matches and why, a stage line and whether it counts), Sent
`rejection.sent_plan.plan_sent` (the rejection decision first, then stages), Drafts and the
outbox folder the rejection rewrite as `mailflow rewrite` previews it (decision with its
evidence, outcome), with what HR would be told. The store is opened read-only, or not at all
when there is none yet (an empty pool).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mailflow.cli.options import config_option, json_option, load, print_json
from mailflow.cli.rewrite import preview, read_store
from mailflow.clock import SystemClock
from mailflow.intake.classify import Mailbox
from mailflow.intake.plan import Trust, plan_inbox
from mailflow.intake.sources import load_sources
from mailflow.intake.stages import load_stages
from mailflow.mail.parse import parse_mail
from mailflow.pool.records import Applicant, Candidate
from mailflow.pool.referrals import referrer_of
from mailflow.pool.talent import TalentPool
from mailflow.rejection.recognise import load_rejection_rules
from mailflow.rejection.sent_plan import plan_sent
from mailflow.settings.config import Config
from mailflow.store.base import Store

FOLDERS = ("inbox", "sent", "drafts", "outbox")


class EmptyPool:
    """The pool of a new installation: nobody in it yet."""

    def by_thread(self, message_ids: list[str]) -> Candidate | None:
        return None

    def by_email(self, email: str) -> Candidate | None:
        return None

    def match(self, applicant: Applicant) -> tuple[Candidate | None, str]:
        return None, ""


def _inbox(config: Config, raw: bytes, store: Store | None) -> dict[str, Any]:
    pool = TalentPool(store, SystemClock()) if store is not None else EmptyPool()
    box = config.mailbox
    plan = plan_inbox(parse_mail(raw), pool, load_sources(config.rules_dir),
                      Mailbox(box.address, tuple(config.company.domains)),
                      Trust(box.address, tuple(config.company.domains),
                            tuple(box.trusted_authserv_ids)),
                      (lambda code: referrer_of(store, code)) if store is not None else None,
                      config.referral.code_param)
    return plan.as_json()


def _sent(config: Config, raw: bytes, store: Store | None) -> dict[str, Any]:
    pool = TalentPool(store, SystemClock()) if store is not None else EmptyPool()

    def ours(message_id: str) -> bool:
        return bool(store and store.find("outbox", "message_id", message_id))

    plan = plan_sent(parse_mail(raw), load_rejection_rules(config.rules_dir),
                     load_stages(config.rules_dir), pool.by_email, ours,
                     config.web.public_url, config.rejection.invite_after_direct_send)
    return plan.as_json()


def _outgoing(config: Config, raw: bytes, folder: str) -> dict[str, Any]:
    report = preview(config, raw, None)
    report.pop("raw", None)
    decision = report["decision"]
    effects = []
    if report["outcome"] == "rewritten":
        effects.append("rewrite with a personal Career Relay link, record the rejection")
        if folder == "outbox":
            effects.append("send it, and file it in Sent")
    elif decision["verdict"] == "uncertain":
        effects.append("leave it untouched and ask HR, once, to settle it with a #mailflow line")
    elif folder == "outbox":
        effects.append("send it as it is" if config.rejection.not_rejection == "send"
                       else "leave it in the folder with a \\Flagged mark for HR")
    else:
        effects.append(f"leave it untouched ({report['why']})")
    if decision["rule"] in ("forbidden-by-marker", "marked-by-hr"):
        effects.append("keep HR's word as a labelled example (rules suggest)")
    return {**report, "effects": effects}


def explain_mail(config: Config, raw: bytes, folder: str) -> dict[str, Any]:
    """The JSON `explain --json` prints for ``raw`` in ``folder``."""
    if folder in ("drafts", "outbox"):
        return {"folder": folder, **_outgoing(config, raw, folder)}
    store = read_store(config)
    try:
        plan = _inbox(config, raw, store) if folder == "inbox" else _sent(config, raw, store)
    finally:
        if store is not None:
            store.close()
    return {"folder": folder, **plan}


def _print_human(report: dict[str, Any]) -> None:
    folder = report["folder"]
    if folder == "inbox":
        click.echo(f"inbox: {report['kind']} (rule {report['rule']}: {report['reason']})")
        if report["applicant"]:
            who = report["applicant"]
            click.echo(f"  applicant: {who['name'] or '-'} <{who['email'] or '-'}> via "
                       f"{who['source']}, position {who['position'] or '-'}")
        if report["kind"] != "ignored":
            click.echo(f"  candidate: {report['candidate_id'] or 'new'} ({report['match']})")
        if report["stage"]:
            counts = "counts" if report["stage"]["counts"] else "ignored"
            click.echo(f"  stage line: {report['stage']['stage']} {counts} "
                       f"({report['stage']['why']})")
    else:
        decision = report["decision"] if "decision" in report else report["rejection"]
        click.echo(f"{folder}: rejection decision {decision['verdict']} (rule {decision['rule']})")
        for item in decision.get("evidence") or []:
            click.echo(f"    {item['weight']:+d} {item['where']} {item['kind']} {item['cue']}: "
                       f"{item['text']}")
        if folder == "sent":
            click.echo(f"  then: {report['action']} ({report['why']})")
        else:
            click.echo(f"  outcome: {report['outcome']} ({report['why']})")
    click.echo("effects:")
    for effect in report["effects"] or ["nothing"]:
        click.echo(f"  - {effect}")


@click.command()
@config_option
@json_option
@click.argument("eml", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--folder", type=click.Choice(FOLDERS), default="inbox", show_default=True,
              help="The folder the mail is found in.")
def explain(config_path: Path | None, as_json: bool, eml: Path, folder: str) -> None:
    """What mailflow would do with this mail in that folder, and why; changes nothing."""
    report = explain_mail(load(config_path), eml.read_bytes(), folder)
    if as_json:
        print_json(report)
    else:
        _print_human(report)


def register(cli: click.Group) -> None:
    cli.add_command(explain)
