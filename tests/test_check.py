"""Issue 2: `mailflow check --connect` against the real Dovecot and aiosmtpd."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness import MAILFLOW, PASSWORD_ENV, env_for, write_config
from servers import ImapAccount, SmtpSink

import mailflow


def _check(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILFLOW, "check", "--connect", "-c", str(config)],
                          capture_output=True, text=True, env=env, timeout=60)


def test_check_connect_succeeds(tmp_path: Path, imap_account: ImapAccount,
                                smtp_sink: SmtpSink) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink)
    done = _check(config, env_for(imap_account))
    assert done.returncode == 0, done.stderr
    assert "imap inbox: INBOX (found by configured name): ok" in done.stdout
    assert "imap sent: Sent (found by special-use \\Sent): ok" in done.stdout
    assert f"smtp 127.0.0.1:{smtp_sink.port}: ok" in done.stdout


def test_check_connect_wrong_password_fails_clearly(tmp_path: Path, imap_account: ImapAccount,
                                                    smtp_sink: SmtpSink) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink)
    done = _check(config, {**env_for(imap_account), PASSWORD_ENV: "wrong"})
    assert done.returncode == 1
    assert done.stderr.startswith("mailflow: error: IMAP 127.0.0.1:")
    assert "authentication failed" in done.stderr.lower()
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_check_connect_missing_secret(tmp_path: Path, imap_account: ImapAccount,
                                      smtp_sink: SmtpSink) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink)
    env = {k: v for k, v in env_for(imap_account).items() if k != PASSWORD_ENV}
    done = _check(config, env)
    assert done.returncode == 2
    assert f"environment variable {PASSWORD_ENV} is not set" in done.stderr


def test_check_connect_smtp_down(tmp_path: Path, imap_account: ImapAccount) -> None:
    sink = SmtpSink()
    sink.start()
    sink.stop()  # its port is now closed
    config = write_config(tmp_path, imap_account, sink)
    done = _check(config, env_for(imap_account))
    assert done.returncode == 1 and "mailflow: error: SMTP 127.0.0.1:" in done.stderr


def test_version_and_help() -> None:
    done = subprocess.run([*MAILFLOW, "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and mailflow.__version__ in done.stdout
    done = subprocess.run([*MAILFLOW, "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "check" in done.stdout and "run" in done.stdout
    done = subprocess.run([*MAILFLOW, "nonsense"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("mailflow: error:")
