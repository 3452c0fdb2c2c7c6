"""`mailflow auth login --provider google|microsoft`: get the refresh token once and store it
owner-only in the token file (`[mailbox] token_file`, or `--token-file`).

Google by the loopback redirect (the URL printed, a listener on 127.0.0.1), Microsoft by the
device code. The endpoints are the provider's preset; `--token-url`, `--authorize-url` and
`--device-url` replace them (a provider of your own, or the tests' token service).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from mailflow.cli.options import config_option, config_path_given
from mailflow.errors import UsageError
from mailflow.mailbox.authorize import Client, device_flow, loopback_flow
from mailflow.settings.config import Config, find_config, load_config
from mailflow.settings.providers import PRESETS
from mailflow.settings.token_file import write_token_file


@click.group()
def auth() -> None:
    """OAuth 2.0 for Google Workspace and Microsoft 365."""


@auth.command()
@config_option
@click.option("--provider", type=click.Choice(sorted(PRESETS)), required=True,
              help="Whose accounts: google (Workspace, loopback redirect) or microsoft (365, "
                   "device code).")
@click.option("--client-id", default="", help="The app's client id (default: the config's "
              "client_id_env variable).")
@click.option("--client-secret-env", default="MAILFLOW_OAUTH_CLIENT_SECRET", show_default=True,
              help="Environment variable holding the client secret (Google needs one).")
@click.option("--token-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Where to store the token (default: the config's token_file).")
@click.option("--tenant", default="", help="Microsoft: the tenant (default: the config's, "
              "else common).")
@click.option("--token-url", default="", help="Instead of the provider's token endpoint.")
@click.option("--authorize-url", default="", help="Instead of Google's authorization page.")
@click.option("--device-url", default="", help="Instead of Microsoft's device-code endpoint.")
def login(config_path: Path | None, provider: str, client_id: str, client_secret_env: str,
          token_file: Path | None, tenant: str, token_url: str, authorize_url: str,
          device_url: str) -> None:
    """Get a refresh token (Google: browser and loopback; Microsoft: device code) and store it
    owner-only in the token file."""
    config = _config(config_path)
    m = config.mailbox if config else None
    preset = PRESETS[provider]
    tenant = tenant or (m.tenant if m else "") or "common"
    client_id = client_id or (os.environ.get(m.client_id_env, "") if m and m.client_id_env
                              else "")
    secret = os.environ.get(client_secret_env, "")
    target = token_file or (m.token_file if m else None)
    if not client_id:
        raise UsageError("give --client-id (the app's id from the provider's console)")
    if target is None:
        raise UsageError("give --token-file, or set [mailbox] token_file in the config")
    if provider == "google" and not secret:
        raise UsageError(f"Google needs the client secret: set ${client_secret_env}")
    client = Client(client_id, secret, tuple(m.scopes) if m and m.scopes and
                    m.provider == provider else preset.scopes,
                    token_url or preset.token_url.replace("{tenant}", tenant))
    if provider == "microsoft":
        token = device_flow(client, device_url or preset.device_url.replace("{tenant}", tenant),
                            click.echo)
    else:
        token = loopback_flow(client, authorize_url or preset.authorize_url, click.echo)
    write_token_file(target, {"client_id": client_id, "client_secret": secret,
                              "refresh_token": str(token["refresh_token"])})
    click.echo(f"token stored in {target} (mode 0600); with [mailbox] auth = \"oauth2\" and "
               f"token_file = \"{target}\", run `mailflow check --connect`")


def _config(config_path: Path | None) -> Config | None:
    config_path = config_path_given(config_path)
    try:
        return load_config(find_config(config_path))
    except UsageError:
        if config_path is not None:
            raise
        return None  # no config yet: the options say everything


def register(cli: click.Group) -> None:
    cli.add_command(auth)
