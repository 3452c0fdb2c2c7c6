"""The OAuth client and refresh token: from the environment variables the config names, else
from an owner-only JSON file (`[mailbox] token_file`), written back atomically.

The file is `{"client_id": ..., "client_secret": ..., "refresh_token": ...}` (any of the three
may instead come from its `*_env` variable, which wins). A file that its group or others can read
is refused: it holds a grant to the whole mailbox. A write goes to a temporary file beside it
(mode 0600), is fsynced and renamed over the old one, so a crash leaves the old token or the new
one, never half of either.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from mailflow.errors import MissingSecret
from mailflow.settings.config import Mailbox
from mailflow.settings.private_files import replace_owner_only

KEYS = ("client_id", "client_secret", "refresh_token")


@dataclass(frozen=True)
class OAuthCredentials:
    client_id: str
    client_secret: str  # "" for a public client (Microsoft's device-code flow)
    refresh_token: str
    refresh_from_file: bool  # where a rotated refresh token must be written back


def read_token_file(path: Path) -> dict[str, str]:
    """The file's values; MissingSecret naming the problem when it is absent, readable by
    others, or not a JSON object of strings."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise MissingSecret(f"token file {path} cannot be read ({exc.strerror}); "
                            "create it with `mailflow auth login`") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MissingSecret(f"token file {path} is readable by others (mode "
                            f"{stat.S_IMODE(mode):04o}); refused: chmod 600 {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MissingSecret(f"token file {path} is not a JSON object: {exc}") from exc
    if not isinstance(data, dict):
        raise MissingSecret(f"token file {path} is not a JSON object")
    return {key: str(data[key]) for key in KEYS if data.get(key)}


def write_token_file(path: Path, values: dict[str, str]) -> None:
    """Write the file owner-only and atomically (settings/private_files.py)."""
    text = json.dumps({key: values[key] for key in KEYS if values.get(key)}, indent=2) + "\n"
    replace_owner_only(path, text.encode("utf-8"))


def oauth_credentials(settings: Mailbox) -> OAuthCredentials:
    """The client and refresh token for `[mailbox] auth = "oauth2"`; MissingSecret naming every
    value that is nowhere to be found."""
    from_file = read_token_file(settings.token_file) if settings.token_file else {}
    values: dict[str, str] = {}
    missing = []
    for key in KEYS:
        variable = str(getattr(settings, f"{key}_env"))
        if variable:
            value = os.environ.get(variable, "")
            if not value and key not in from_file:
                missing.append(f"environment variable {variable} is not set "
                               f"(mailbox.{key}_env names it)")
            values[key] = value or from_file.get(key, "")
        else:
            values[key] = from_file.get(key, "")
            if not values[key] and key != "client_secret":
                where = f"token file {settings.token_file}" if settings.token_file else "config"
                missing.append(f"{key} is neither in the {where} nor in mailbox.{key}_env")
    if missing:
        raise MissingSecret("; ".join(missing))
    token_from_env = bool(settings.refresh_token_env and os.environ.get(settings.refresh_token_env))
    return OAuthCredentials(values["client_id"], values["client_secret"],
                            values["refresh_token"], not token_from_env)
