"""`mailflow init DIR [--company NAME] [--provider google|microsoft|imap] [--force]`."""

from __future__ import annotations

from pathlib import Path

import click

from mailflow.settings.site import CONFIG, ENV_EXAMPLE, PROVIDERS, write_site


@click.command()
@click.argument("target", metavar="DIR", type=click.Path(path_type=Path, file_okay=False))
@click.option("--company", default="株式会社サンプル", show_default=True,
              help="The company's name, as templates show it.")
@click.option("--provider", type=click.Choice(PROVIDERS), default="imap", show_default=True,
              help="google (Workspace) and microsoft (365) log in with OAuth; imap with a "
                   "password.")
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
def init(target: Path, company: str, provider: str, force: bool) -> None:
    """Write a starter site for a new company: config, rules, templates, .env.example."""
    written = write_site(target, company, provider, force)
    config = target / CONFIG
    click.echo(f"wrote {len(written)} files in {target}")
    click.echo("next / 次に:")
    click.echo(f"  1. edit {config} (mailbox, smtp, web.public_url, career_relay.company_id)")
    click.echo(f"  2. fill in {target / ENV_EXAMPLE}, save it as {target / '.env'} (chmod 600) "
               "and load it: set -a; . ./.env; set +a")
    if provider != "imap":
        click.echo(f"  3. mailflow auth login --provider {provider} --client-id CLIENT_ID "
                   f"-c {config}  (docs/oauth.md)")
    click.echo(f"  {'4' if provider != 'imap' else '3'}. mailflow check --connect -c {config}")


def register(cli: click.Group) -> None:
    cli.add_command(init)
