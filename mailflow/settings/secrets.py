"""Every secret the configuration needs, checked at once before anything starts.

Secrets stand in environment variables that the config names (`*_env` keys). `missing_secrets`
finds every one that is not set, each as a problem naming the variable and the key that names
it (positioned at that key, or its section, when the file has it), and with `auth = "oauth2"`
the OAuth client and refresh token (their variables or the owner-only token file), so `mailflow
check` and `mailflow run` report them all at once instead of the first partner callback finding one.
"""

from __future__ import annotations

from mailflow.errors import MissingSecret, Problem
from mailflow.settings.config import Config
from mailflow.settings.token_file import oauth_credentials
from mailflow.settings.tomlpos import line_of, locate


def needed_secrets(config: Config) -> list[str]:
    """The `*_env` keys whose secrets this configuration needs, in the file's order. The admin
    token (`web.admin_token_env`) is not among them: it is optional, and without it the admin
    pages refuse every login and `/metrics` answers 403 (`web.admin`)."""
    keys = [] if config.mailbox.auth == "oauth2" else ["mailbox.password_env"]
    if config.smtp.username and config.smtp.auth == "password":
        keys.append("smtp.password_env")
    if config.store.engine == "postgresql":
        keys.append("store.dsn_env")
    if config.network.publish:
        keys.append("network.dsn_env")
    return [*keys, "career_relay.secret_env", "career_relay.ledger_key_env"]


def missing_secrets(config: Config) -> list[Problem]:
    """A problem for each needed secret whose environment variable is not set."""
    path = str(config.source) if config.source else "config"
    positions = locate(config.source.read_text(encoding="utf-8")) if config.source else {}
    problems = []
    if config.mailbox.auth == "oauth2":
        try:
            oauth_credentials(config.mailbox)
        except MissingSecret as missing:
            key = "token_file" if config.mailbox.token_file else "refresh_token_env"
            problems.append(Problem(path, line_of(positions, ("mailbox", key)),
                                    f"OAuth: {missing}"))
    for key in needed_secrets(config):
        try:
            config.secret(key)
        except MissingSecret as missing:
            section, _, name = key.partition(".")
            problems.append(Problem(path, line_of(positions, (section, name)), str(missing)))
    return problems
