"""`mailflow erase ID|EMAIL --reason TEXT [--json]`, `mailflow purge [--dry-run] [--json]`,
`mailflow export-person ID|EMAIL DIR [--json]`: erasure, retention and disclosure (APPI 法35,
法22, 法33; what each removes or writes: `mailflow.privacy`).

`erase` and `purge` change data: they go through the running daemon, or run here under the
store's writer lock; with `[network] publish = true`, `erase` also withdraws the person's entry
from the network pool at once (as `mailflow network publish` does). `purge --dry-run` and
`export-person` read the store (consistent while the daemon runs); `export-person` writes the
folder itself, as the user who runs it, owner-only, and records the export in the audit log
(through the daemon when it runs). Each is recorded in the audit log with who ran it
(`cli:USER`), never with the data itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mailflow.cli.options import carry_out, config_option, json_option, load, print_json, read_store
from mailflow.clock import default_clock
from mailflow.errors import MailflowError
from mailflow.pool import audit
from mailflow.pool.audit import console_actor
from mailflow.privacy import disclosure
from mailflow.privacy.at_rest import owner_only_umask
from mailflow.privacy.desk import PrivacyDesk
from mailflow.privacy.purge import purge as find_and_purge

if TYPE_CHECKING:
    from mailflow.settings.config import Config


def _counts(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if v) or "nothing"


@click.command()
@config_option
@click.argument("candidate")
@click.option("--reason", required=True, help="Why (e.g. 'request by mail 2026-11-20').")
@json_option
def erase(config_path: Path | None, candidate: str, reason: str, as_json: bool) -> None:
    """Erase one person's personal data everywhere mailflow keeps it."""
    owner_only_umask()
    config = load(config_path)
    args = {"candidate": candidate, "reason": reason, "actor": console_actor()}
    done = carry_out(config, "privacy.erase", args,
                     lambda s: PrivacyDesk(s.store, s.clock, s.config, s.lane).erase(args))
    if config.network.publish:
        _leave_network(config)
    if as_json:
        print_json(done)
    else:
        click.echo(f"{done['candidate_id']} erased: {_counts(done['removed'])}")


def _leave_network(config: Config) -> None:
    """The erased person's entry leaves the network pool now (their link went with them)."""
    from mailflow.cli.network import publish_now

    try:
        publish_now(config)
    except MailflowError as exc:
        click.echo(f"mailflow: warning: erased, but the network pool could not be updated ({exc}"
                   "): their entry leaves it at the next `mailflow network publish`", err=True)


@click.command()
@config_option
@click.option("--dry-run", is_flag=True, help="List what is past retention; change nothing.")
@json_option
def purge(config_path: Path | None, dry_run: bool, as_json: bool) -> None:
    """Remove what is past its retention period (candidates, attachments, quarantine, bodies)."""
    owner_only_umask()
    config = load(config_path)
    actor = console_actor()
    args = {"dry_run": dry_run, "actor": actor}
    if dry_run:
        store = read_store(config)
        try:
            report = find_and_purge(store, default_clock(), config, actor, True).report
        finally:
            store.close()
    else:
        report = carry_out(config, "privacy.purge", args,
                           lambda s: PrivacyDesk(s.store, s.clock, s.config, s.lane).purge(args))
    if as_json:
        print_json(report)
        return
    for item in report["items"]:
        click.echo(f"{item['what']:<10}  {item['key'][:20]:<20}  {item['candidate_id'] or '-':<18}"
                   f"  {item['why']}")
    click.echo(f"{'would remove' if dry_run else 'removed'}: {_counts(report['counts'])}")


@click.command("export-person")
@config_option
@click.argument("candidate")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@json_option
def export_person(config_path: Path | None, candidate: str, folder: Path,
                  as_json: bool) -> None:
    """Write everything kept about one person into FOLDER (new or empty), owner-only."""
    owner_only_umask()
    config = load(config_path)
    clock = default_clock()
    store = read_store(config)
    try:
        found = disclosure.gather(store, clock, config.data_dir, candidate)
    finally:
        store.close()
    disclosure.check_target(folder)
    actor = console_actor()
    args = {"actor": actor, "action": "export-person", "target": found.candidate_id,
            "detail": found.counts()}
    carry_out(config, "audit.record", args,
              lambda s: audit.record(s.store, s.clock, actor, "export-person",
                                     found.candidate_id, found.counts()))
    written = disclosure.write(found, folder)
    if as_json:
        print_json({"candidate_id": found.candidate_id, "folder": str(folder),
                    "files": [str(p.relative_to(folder)) for p in written],
                    "counts": found.counts()})
    else:
        click.echo(f"{found.candidate_id}: {len(written)} files written to {folder} "
                   "(owner-only)")


def register(cli: click.Group) -> None:
    for command in (erase, purge, export_person):
        cli.add_command(command)
