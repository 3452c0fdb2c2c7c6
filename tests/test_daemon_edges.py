"""Issue 3: the watchdog, JSON logs, and logs without personal data."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from harness import MAILFLOW, PASSWORD_ENV, DaemonThread, env_for, wait_until, write_config
from servers import Dovecot, ImapAccount, StallingProxy

from mailflow.demo import samples


@pytest.fixture(autouse=True)
def password(imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)


def test_watchdog_marks_unhealthy_when_the_server_is_silent(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount) -> None:
    proxy = StallingProxy(dovecot.port)
    proxy.start()
    try:
        config = write_config(tmp_path, imap_account, port=proxy.port, idle_seconds=1,
                              timeout_seconds=1, silence_alarm_seconds=3)
        with DaemonThread(config) as running:
            daemon = running.daemon
            time.sleep(2.0)
            assert daemon.health.healthy
            proxy.freeze()
            wait_until(lambda: not daemon.health.healthy, timeout=15, what="unhealthy")
            assert any("silent" in reason for reason in daemon.health.reasons)
            proxy.thaw()
            wait_until(lambda: daemon.health.healthy, timeout=20, what="healthy again")
    finally:
        proxy.stop()


def test_json_logs_name_messages_not_people(tmp_path: Path, dovecot: Dovecot,
                                            imap_account: ImapAccount) -> None:
    config = write_config(tmp_path, imap_account)
    log_path = tmp_path / "daemon.jsonl"
    with log_path.open("wb") as log:
        process = subprocess.Popen([*MAILFLOW, "run", "--log-format", "json", "-c", str(config)],
                                   env=env_for(imap_account), stdout=log, stderr=log,
                                   stdin=subprocess.DEVNULL)
        try:
            wait_until(lambda: (tmp_path / "data" / "control.sock").exists(), what="start")
            time.sleep(1.0)
            dovecot.append(imap_account.username, "INBOX", samples.direct_application_jis()
                           .replace(samples.RECRUITING.encode(), imap_account.address.encode()))
            wait_until(lambda: b"application via direct" in log_path.read_bytes(),
                       what="the application logged")
        finally:
            process.terminate()
            process.wait(15)
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assert lines and all({"at", "level", "logger", "message"} <= set(line) for line in lines)
    handled = [line["message"] for line in lines if "application via" in line["message"]]
    assert handled[0].startswith("inbox:")  # names the message by folder, UIDVALIDITY, UID
    text = log_path.read_text(encoding="utf-8")
    for personal in ("山田", "太郎", "taro.yamada", "example.net", "03-1234-5678", "0312345678",
                     "応募"):
        assert personal not in text, f"personal data in the log: {personal}"
    assert process.returncode == 0
