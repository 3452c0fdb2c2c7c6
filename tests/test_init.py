"""Issue 17: `mailflow init DIR` writes a starter site that `mailflow check` accepts once the
secrets it names are set."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from harness import MAILFLOW

from mailflow.settings.config import load_config
from mailflow.starter import SHIPPED_RULES, SHIPPED_TEMPLATES

SECRETS = ("MAILFLOW_IMAP_PASSWORD", "MAILFLOW_SMTP_PASSWORD", "MAILFLOW_RELAY_SECRET",
           "MAILFLOW_LEDGER_KEY")


def _env(**set_: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    return {**env, **set_}


def _mailflow(*args: str | Path, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILFLOW, *map(str, args)], capture_output=True, text=True,
                          env=env or _env(), timeout=60)


def test_init_then_check_names_each_missing_secret_and_passes_once_they_are_set(
        tmp_path: Path) -> None:
    site = tmp_path / "x"
    done = _mailflow("init", site, "--company", "テスト株式会社")
    assert done.returncode == 0, done.stderr
    config = site / "config.toml"
    assert load_config(config).company.name == "テスト株式会社"
    assert "テスト株式会社" in config.read_text(encoding="utf-8")

    missing = _mailflow("check", "-c", config)
    assert missing.returncode == 2
    named = [name for name in SECRETS if name in missing.stderr]
    assert named == list(SECRETS), missing.stderr
    assert all(line.startswith(f"mailflow: error: {config}:")
               for line in missing.stderr.splitlines())

    example = (site / ".env.example").read_text(encoding="utf-8")
    variables = [line.split("=")[0] for line in example.splitlines()
                 if line and not line.startswith("#")]
    assert set(SECRETS) <= set(variables)
    ok = _mailflow("check", "-c", config, env=_env(**{name: "x" for name in variables}))
    assert ok.returncode == 0, ok.stderr
    assert "ok" in ok.stdout


def test_the_site_is_owner_only_and_carries_the_shipped_rules_and_templates(
        tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert _mailflow("init", site).returncode == 0
    for shipped, folder in ((SHIPPED_RULES, "rules"), (SHIPPED_TEMPLATES, "templates")):
        for path in shipped.iterdir():
            assert (site / folder / path.name).read_bytes() == path.read_bytes()
    for path in [site, *site.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    config = load_config(site / "config.toml")
    assert config.rules_dir == site / "rules" and config.templates_dir == site / "templates"


def test_init_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert _mailflow("init", site).returncode == 0
    rules = site / "rules" / "rejection.toml"
    rules.write_text("# HR's own rules\n", encoding="utf-8")
    again = _mailflow("init", site)
    assert again.returncode == 2
    assert "rules/rejection.toml" in again.stderr and "--force" in again.stderr
    assert rules.read_text(encoding="utf-8") == "# HR's own rules\n"
    forced = _mailflow("init", site, "--force")
    assert forced.returncode == 0, forced.stderr
    assert rules.read_bytes() == (SHIPPED_RULES / "rejection.toml").read_bytes()


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_an_oauth_site_needs_its_token_file_then_checks(tmp_path: Path, provider: str) -> None:
    site = tmp_path / provider
    done = _mailflow("init", site, "--provider", provider)
    assert done.returncode == 0, done.stderr
    assert "mailflow auth login" in done.stdout
    config = load_config(site / "config.toml")
    assert (config.mailbox.provider, config.mailbox.auth, config.smtp.auth) == (
        provider, "oauth2", "oauth2")
    env = _env(MAILFLOW_RELAY_SECRET="r", MAILFLOW_LEDGER_KEY="k")
    missing = _mailflow("check", "-c", site / "config.toml", env=env)
    assert missing.returncode == 2 and "oauth-token.json" in missing.stderr
    assert "mailflow auth login" in missing.stderr
    token = site / "oauth-token.json"
    token.write_text(json.dumps({"client_id": "id", "client_secret": "s",
                                 "refresh_token": "t"}), encoding="utf-8")
    token.chmod(0o600)
    ok = _mailflow("check", "-c", site / "config.toml", env=env)
    assert ok.returncode == 0, ok.stderr


def test_a_company_name_with_quotes_round_trips_and_a_bad_provider_is_a_usage_error(
        tmp_path: Path) -> None:
    name = 'ACME "Japan" \\ 合同会社'
    assert _mailflow("init", tmp_path / "a", "--company", name).returncode == 0
    assert load_config(tmp_path / "a" / "config.toml").company.name == name
    bad = _mailflow("init", tmp_path / "b", "--provider", "yahoo")
    assert bad.returncode == 2 and "yahoo" in bad.stderr
    assert not (tmp_path / "b").exists()
