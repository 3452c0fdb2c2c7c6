"""Issue 3: SIGHUP reloads rules and templates, and keeps the old ones when the new are broken."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest
from harness import PASSWORD_ENV, daemon_process, wait_until, write_config
from servers import Dovecot, ImapAccount

from mailflow.settings.config import load_config
from mailflow.starter import SHIPPED_RULES
from mailflow.store import open_store


def _own_rules(tmp_path: Path, config: Path) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(SHIPPED_RULES, rules)
    config.write_text(config.read_text().replace(str(SHIPPED_RULES), str(rules)))
    return rules


def application(to: str, sender: str, subject: str) -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{sender}.{time.time_ns()}>\r\n\r\n応募します。\r\n").encode()


def _sources(config: Path) -> set[str]:
    store = open_store(load_config(config).data_dir, read_only=True)
    try:
        return {c["source"] for c in store.scan("candidates")}
    finally:
        store.close()


def _logged(tmp_path: Path, line: str) -> int:
    """How many lines of the daemon's log say `line`."""
    return (tmp_path / "daemon.log").read_text(errors="replace").count(line)


def test_sighup_reloads_and_a_broken_file_keeps_the_old_rules(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    config = write_config(tmp_path, imap_account)
    rules = _own_rules(tmp_path, config)
    user, address = imap_account.username, imap_account.address
    good = (rules / "sources.toml").read_text(encoding="utf-8")
    with daemon_process(config, imap_account) as process:
        wait_until(lambda: (tmp_path / "data" / "control.sock").exists(), what="start")
        time.sleep(1.0)
        # broken: the daemon logs the problems and keeps the shipped rules
        (rules / "sources.toml").write_text(good + "\n[[source]]\nnam = 'x'\n", "utf-8")
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: _logged(tmp_path, "reload refused") == 1, what="the refused reload")
        dovecot.append(user, "INBOX", application(address, "a@example.net", "応募"))
        wait_until(lambda: _sources(config) == {"direct"}, what="handled with the old rules")
        # fixed, with the direct source renamed: the new rules are in force after SIGHUP
        (rules / "sources.toml").write_text(good.replace('name = "direct"', 'name = "web"'),
                                            "utf-8")
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: _logged(tmp_path, "rules and templates reloaded") == 1,
                   what="the reload")  # before the mail: on a busy machine 0.5 s was not enough
        dovecot.append(user, "INBOX", application(address, "b@example.net", "応募"))
        wait_until(lambda: _sources(config) == {"direct", "web"}, what="the new rules")
        assert process.poll() is None
    log = (tmp_path / "daemon.log").read_text()
    assert "reload refused" in log and "sources.toml" in log and "unknown key" in log
