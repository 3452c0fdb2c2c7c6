"""The control channel's commands: what a write command run while the daemon runs asks it to do
(`mailflow.daemon.control`), and what the admin pages carry out in-process (`web.host`). Each is
a function of the daemon's desks; the store lane is taken where a desk does not take it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from mailflow.kpi import outcomes
from mailflow.profile import corrections
from mailflow.profile.dictionary import load_skills

if TYPE_CHECKING:
    from mailflow.daemon.service import Daemon


def control_handlers(daemon: Daemon) -> dict[str, Callable[[dict[str, Any]], Any]]:
    return {
        "ping": lambda args: "pong",
        "quarantine.replay": lambda args: daemon.replay(str(args["id"])),
        "rules.reload": lambda args: daemon.reload_telling_systemd(),
        "rules.check": lambda args: daemon.rules_check(),
        "rewrite.record": lambda args: _record_rewrite(daemon, args),
        "consent.record": lambda args: _record_consent(daemon, args),
        "tag.change": lambda args: _change_tag(daemon, args),
        "intent.record": lambda args: _record_intent(daemon, args),
        "import.csv": lambda args: _import_csv(daemon, args),
        "candidate.set": lambda args: corrections.set_field(
            daemon.store, daemon.clock, args, load_skills(daemon.config.rules_dir), daemon.lane),
        "backfill.start": lambda args: daemon.backfills.start(
            str(args["folder"]), date.fromisoformat(args["since"]) if args.get("since")
            else None),
        "backfill.status": lambda args: daemon.backfills.status.get(str(args["folder"])),
        "outbox.queue": lambda args: daemon.outbox.queue_command(args),
        "outbox.resend": lambda args: daemon.outbox.resend(str(args["id"])),
        "outbox.mark_sent": lambda args: daemon.outbox.mark_sent(str(args["id"])),
        "ledger.redeem": lambda args: daemon.ledger.redeem(str(args["note"])),
        "candidate.hire": lambda args: outcomes.hire(daemon.store, daemon.clock, daemon.ledger,
                                                     args),
        "candidate.left": lambda args: outcomes.left(daemon.store, daemon.clock, args, daemon.lane),
        "audit.record": lambda args: _audit(daemon, args),
        "network.links": lambda args: _network_links(daemon, args),
        "privacy.erase": daemon.privacy.erase,
        "privacy.purge": daemon.privacy.purge,
        "opening.add": daemon.openings.add,
        "opening.close": lambda args: daemon.openings.close(str(args["id"])),
        "opening.model": lambda args: daemon.openings.model(),
    }


def _import_csv(daemon: Daemon, args: dict[str, Any]) -> Any:
    # here, not at the top: the daemon starts without the importer and its spreadsheet readers
    from mailflow.intake.importer import import_file

    return import_file(daemon.store, daemon.clock, daemon.config.zone, str(args["path"]),
                       bool(args.get("dry_run")), purposes=daemon.config.privacy.purposes,
                       dictionary=load_skills(daemon.config.rules_dir))


def _audit(daemon: Daemon, args: dict[str, Any]) -> int:
    """An entry in the audit log for what a CLI command did on its own (an export)."""
    from mailflow.pool import audit

    with daemon.lane:
        return audit.record(daemon.store, daemon.clock, str(args["actor"]),
                            str(args["action"]), str(args.get("target", "")),
                            dict(args.get("detail") or {}))


def _network_links(daemon: Daemon, args: dict[str, Any]) -> int:
    """`network publish`'s change to the company's entry map (`mailflow.network.desk`)."""
    from mailflow.network.desk import record_links

    with daemon.lane:
        return record_links(daemon.store, daemon.clock, dict(args["add"]), list(args["drop"]),
                            str(args["actor"]), dict(args["summary"]))


def _record_consent(daemon: Daemon, args: dict[str, Any]) -> Any:
    from mailflow.pool.talent import TalentPool

    with daemon.lane:
        return TalentPool(daemon.store, daemon.clock).record_consent(args)


def _change_tag(daemon: Daemon, args: dict[str, Any]) -> Any:
    from mailflow.pool.tagging import hr_tag

    with daemon.lane:
        return hr_tag(daemon.store, daemon.clock, args)


def _record_intent(daemon: Daemon, args: dict[str, Any]) -> Any:
    from mailflow.pool.intent import hr_intent

    with daemon.lane:
        return hr_intent(daemon.store, daemon.clock, args)


def _record_rewrite(daemon: Daemon, args: dict[str, Any]) -> Any:
    from mailflow.rejection.rewriting import record_handler

    with daemon.lane:
        return record_handler(daemon.config, daemon.store, daemon.clock)(args)
