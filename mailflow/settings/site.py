"""`mailflow init DIR`: a starter site for a new company — config.toml (commented in Japanese and
English), the shipped rules and templates to edit, and `.env.example` naming every secret the
config needs. Nothing existing is overwritten unless asked; every file is owner-only."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import jinja2

from mailflow.errors import UsageError
from mailflow.settings.config import Config, load_config
from mailflow.settings.secrets import needed_secrets
from mailflow.starter import SHIPPED, SHIPPED_RULES, SHIPPED_TEMPLATES

PROVIDERS = ("imap", "google", "microsoft")
CONFIG = "config.toml"
ENV_EXAMPLE = ".env.example"


def starter_config(company: str, provider: str) -> str:
    if provider not in PROVIDERS:
        raise UsageError(f"unknown provider {provider!r}; choices: {', '.join(PROVIDERS)}")
    if not company.strip() or any(ord(c) < 0x20 for c in company):
        raise UsageError("--company: a name on one line, e.g. 'テスト株式会社'")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(SHIPPED)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.get_template("config.toml.j2").render(
        company=company, company_toml=json.dumps(company, ensure_ascii=False),
        provider=provider)


def _shipped(folder: Path, name: str) -> Iterator[tuple[str, bytes]]:
    for path in sorted(folder.iterdir()):
        if path.is_file():
            yield f"{name}/{path.name}", path.read_bytes()


def site_files(company: str, provider: str) -> dict[str, bytes]:
    """Relative path -> content, everything but `.env.example` (which is read off the config)."""
    files = {CONFIG: starter_config(company, provider).encode()}
    files.update(_shipped(SHIPPED_RULES, "rules"))
    files.update(_shipped(SHIPPED_TEMPLATES, "templates"))
    return files


def variable(config: Config, env_key: str) -> str:
    """The environment variable a `section.*_env` key names."""
    section, _, key = env_key.partition(".")
    return str(getattr(getattr(config, section), key))


def secret_variables(config: Config) -> list[tuple[str, str]]:
    """(environment variable, what it holds) for every secret the config names."""
    m = config.mailbox
    found = [(variable(config, key), key) for key in needed_secrets(config)]
    if m.auth == "oauth2":
        found += [(name, f"mailbox.{key}") for key, name in (
            ("client_id_env", m.client_id_env), ("client_secret_env", m.client_secret_env),
            ("refresh_token_env", m.refresh_token_env)) if name]
    return [*found, (config.web.admin_token_env, "web.admin_token_env")]


HOLDS = {
    "mailbox.password_env": "IMAP のパスワード / the IMAP password",
    "smtp.password_env": "SMTP のパスワード / the SMTP password",
    "career_relay.secret_env": "Career Relay と共有する署名鍵 / the callback signing secret "
                               "shared with Career Relay",
    "career_relay.ledger_key_env": "台帳を封印する鍵(長い乱数) / the key that seals the ledger "
                                   "(a long random string)",
    "web.admin_token_env": "管理画面のトークン(長い乱数) / the admin pages' token "
                           "(a long random string)",
}


def env_example(config: Config) -> str:
    lines = [
        "# mailflow の秘密の値 / mailflow's secrets",
        "# 値を入れて .env として保存し、所有者だけが読めるようにします(chmod 600)。",
        "# Fill in, save as .env, owner-only (chmod 600); systemd reads it as EnvironmentFile.",
        "# 乱数の作り方 / a random value: python3 -c 'import secrets; "
        "print(secrets.token_urlsafe(32))'",
    ]
    for name, key in secret_variables(config):
        lines += ["", f"# {HOLDS.get(key, key)} ({key})", f"{name}="]
    if config.mailbox.auth == "oauth2":
        lines += ["", "# `mailflow auth login` だけが使います / read only by `mailflow auth login`"
                      " (Google: the OAuth client secret)",
                  "# MAILFLOW_OAUTH_CLIENT_SECRET="]
    return "\n".join(lines) + "\n"


def write_site(target: Path, company: str, provider: str, force: bool = False) -> list[Path]:
    """Write the starter site into `target`; UsageError naming the files that exist, unless
    `force`. Returns the files written."""
    files = site_files(company, provider)
    existing = [name for name in [*files, ENV_EXAMPLE] if (target / name).exists()]
    if existing and not force:
        raise UsageError(f"{target} already has {', '.join(existing)}; nothing written "
                         "(--force overwrites them)")
    written = []
    for name, content in files.items():
        written.append(_write(target / name, content))
    config = load_config(target / CONFIG)
    written.append(_write(target / ENV_EXAMPLE, env_example(config).encode()))
    return written


def _write(path: Path, content: bytes) -> Path:
    for folder in reversed([path.parent, *path.parent.parents]):
        if not folder.exists():
            folder.mkdir(mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(content)
    os.chmod(path, 0o600)  # an existing file overwritten with --force becomes owner-only too
    return path
