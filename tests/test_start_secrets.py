"""Issue 16, part 5: every secret the configuration needs is checked at start. `check` reports
every missing one at once (exit 2), and `run` refuses to start with the same lines, before
opening anything (no store, no login)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness import MAILFLOW, PASSWORD_ENV, env_for, write_config
from servers import Dovecot, ImapAccount
from test_login_refused import login_attempts

SMTP_PASSWORD_ENV = "MAILFLOW_TEST_SMTP_PASSWORD"


def mailflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILFLOW, *args], capture_output=True, text=True, env=env,
                          timeout=60)


def without(env: dict[str, str], *variables: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in variables}


def line_of(config: Path, text: str) -> int:
    return next(n for n, line in enumerate(config.read_text().splitlines(), 1) if text in line)


def test_check_reports_every_missing_secret_at_once(tmp_path: Path, dovecot: Dovecot,
                                                    imap_account: ImapAccount) -> None:
    config = write_config(tmp_path, imap_account)
    config.write_text(config.read_text().replace(
        "[smtp]\n", f'[smtp]\nusername = "mailflow"\npassword_env = "{SMTP_PASSWORD_ENV}"\n'))
    env = without(env_for(imap_account), PASSWORD_ENV, SMTP_PASSWORD_ENV,
                  "MAILFLOW_RELAY_SECRET", "MAILFLOW_LEDGER_KEY")
    done = mailflow("check", "--connect", "-c", str(config), env=env)
    assert done.returncode == 2, done.stderr
    where = f"mailflow: error: {config.resolve()}"
    imap_line = line_of(config, f'password_env = "{PASSWORD_ENV}"')
    smtp_line = line_of(config, f'password_env = "{SMTP_PASSWORD_ENV}"')
    assert done.stderr.splitlines() == [  # the file has no [career_relay]: no line for those
        f"{where}:{imap_line}: environment variable {PASSWORD_ENV} is not set "
        "(mailbox.password_env names it)",
        f"{where}:{smtp_line}: environment variable {SMTP_PASSWORD_ENV} is not set "
        "(smtp.password_env names it)",
        f"{where}: environment variable MAILFLOW_RELAY_SECRET is not set "
        "(career_relay.secret_env names it)",
        f"{where}: environment variable MAILFLOW_LEDGER_KEY is not set "
        "(career_relay.ledger_key_env names it)",
    ]
    assert done.stdout == "" and login_attempts(dovecot, imap_account.username) == (0, 0)


def test_check_with_the_ledger_key_unset_exits_2_naming_it(tmp_path: Path,
                                                          imap_account: ImapAccount) -> None:
    config = write_config(tmp_path, imap_account)
    env = without(env_for(imap_account), "MAILFLOW_LEDGER_KEY", "MAILFLOW_ADMIN_TOKEN")
    for args in (["check"], ["check", "--connect"]):
        done = mailflow(*args, "-c", str(config), env=env)
        assert done.returncode == 2
        assert done.stderr == (f"mailflow: error: {config.resolve()}: environment variable "
                               "MAILFLOW_LEDGER_KEY is not set (career_relay.ledger_key_env "
                               "names it)\n")
    # the admin token is not asked for: without it the admin pages and /metrics are off
    done = mailflow("check", "-c", str(config), env={**env, "MAILFLOW_LEDGER_KEY": "k"})
    assert done.returncode == 0, done.stderr


def test_run_refuses_to_start_without_the_ledger_key(tmp_path: Path, dovecot: Dovecot,
                                                     imap_account: ImapAccount) -> None:
    config = write_config(tmp_path, imap_account)
    env = without(env_for(imap_account), "MAILFLOW_LEDGER_KEY")
    done = mailflow("run", "-c", str(config), env=env)
    assert done.returncode == 2
    checked = mailflow("check", "-c", str(config), env=env)
    assert done.stderr == checked.stderr and "MAILFLOW_LEDGER_KEY" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not (tmp_path / "data").exists(), "the store was opened"
    assert login_attempts(dovecot, imap_account.username) == (0, 0)
