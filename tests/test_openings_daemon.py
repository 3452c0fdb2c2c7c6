"""Issue 20 part 4 through the running daemon: an opening in `openings.toml` is ranked at start and
HR's shortlist arrives at the SMTP sink once, across a restart; `opening add` goes through the
control channel and mails its own shortlist."""

from __future__ import annotations

import email
import email.policy
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from harness import MAILFLOW, PASSWORD_ENV, DaemonThread, env_for, write_config
from servers import ImapAccount, SmtpSink
from test_openings import JAVA_TOML, java_pool, seed

from mailflow.settings.config import load_config
from mailflow.starter import SHIPPED_RULES
from mailflow.store import open_store


def subjects(sink: SmtpSink) -> list[str]:
    return [str(email.message_from_bytes(m.data, policy=email.policy.default)["Subject"])
            for m in sink.messages]


def test_hr_gets_the_shortlist_once_through_the_daemon(
        tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    rules = tmp_path / "rules"
    shutil.copytree(SHIPPED_RULES, rules)
    (rules / "openings.toml").write_text(JAVA_TOML, encoding="utf-8")
    config = write_config(tmp_path, imap_account, smtp_sink)
    config.write_text(config.read_text(encoding="utf-8").replace(
        f'dir = "{SHIPPED_RULES}"', f'dir = "{rules}"'), encoding="utf-8")
    store = open_store(load_config(config).data_dir)
    try:
        seed(store, java_pool())
    finally:
        store.close()
    with DaemonThread(config):
        (mail,) = smtp_sink.wait_for(1, timeout=30)
    with DaemonThread(config):  # a restart: the opening is unchanged, nothing more
        time.sleep(3)
    assert subjects(smtp_sink) == ["【mailflow】候補者リスト: Javaエンジニア（2名）"]
    assert mail.rcpt_tos == (imap_account.address,)
    body = email.message_from_bytes(mail.data, policy=email.policy.default).get_content()
    assert "<a@example.net>" in body and "<b@example.net>" in body
    assert "opted-out@" not in body and "no-consent@" not in body and "<c@" not in body

    with DaemonThread(config):  # a command while the daemon runs: through its control channel
        done = subprocess.run([*MAILFLOW, "opening", "add", "--title", "Javaエンジニア",
                               "--skills", "Java", "-c", str(config)], capture_output=True,
                              text=True, env=env_for(imap_account), timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        smtp_sink.wait_for(2, timeout=30)
    assert len(smtp_sink.messages) == 2
