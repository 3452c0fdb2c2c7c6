"""Issue 11 end to end: the real daemon (a child process on a file clock, or a thread) with
Dovecot and aiosmtpd: killed across the due time it sends once; a broken reload keeps the old
rules; the unsubscribe link over HTTP."""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from harness import MAILFLOW, PASSWORD_ENV, DaemonThread, env_for, wait_until, write_config
from servers import ImapAccount, SmtpSink, free_port

from mailflow.clock import CLOCK_FILE_ENV, FrozenClock, iso
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.relay.desk import RejectionFacts, RelayDesk
from mailflow.settings.config import load_config
from mailflow.starter import SHIPPED_RULES
from mailflow.store import open_store
from mailflow.store.base import Doc

TOKYO = ZoneInfo("Asia/Tokyo")
REJECTED_AT = datetime(2025, 5, 7, 10, 0, tzinfo=TOKYO)  # Wednesday
DUE = datetime(2025, 11, 7, 10, 0, tzinfo=TOKYO)  # Friday, no holiday
SETTINGS = ('[privacy]\nnotified_purposes = ["selection", "talent_pool", "rescout"]\n'
            "[followups]\ntick_seconds = 1\n")


def rejected_candidate(config_path: Path) -> str:
    """Hanako, rejected with rescout=yes on REJECTED_AT, written before any daemon runs."""
    config = load_config(config_path)
    clock = FrozenClock(REJECTED_AT - timedelta(days=10))
    with open_store(config.data_dir, config.store.engine) as store:
        candidate, _ = TalentPool(store, clock).apply(
            Applicant("山田 花子", "hanako@example.net", (), "営業", "", "direct"), None)
        clock.set(REJECTED_AT)
        RelayDesk(store, clock, config.web.public_url).issue(
            candidate, RejectionFacts("スキル不足", "", True, "<rej@example.co.jp>"))
        return str(candidate["id"])


def rows(config_path: Path) -> dict[str, Doc]:
    config = load_config(config_path)
    with open_store(config.data_dir, config.store.engine, read_only=True) as store:
        return {row["rule"]: row for row in store.scan("followups")}


def start(config_path: Path, account: ImapAccount, clock_file: Path,
          crash_at: str | None = None) -> subprocess.Popen[bytes]:
    env = {**env_for(account), CLOCK_FILE_ENV: str(clock_file)}
    if crash_at:
        env["MAILFLOW_CRASH_AT"] = crash_at
    log = (config_path.parent / "daemon.log").open("ab")
    return subprocess.Popen([*MAILFLOW, "run", "-c", str(config_path)], env=env, stdout=log,
                            stderr=log, stdin=subprocess.DEVNULL)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@pytest.mark.parametrize("crash_at", ["followups:queued", "followups:sent"])
def test_daemon_killed_across_the_due_time_sends_once(
        crash_at: str, tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink, extra=SETTINGS)
    rejected_candidate(config)
    clock_file = tmp_path / "now.txt"
    clock_file.write_text(iso(DUE - timedelta(hours=1)))
    before = start(config, imap_account, clock_file)
    try:
        wait_until(lambda: "rescout-6-months" in rows(config), what="the follow-up planned")
    finally:
        before.kill()  # kill -9, an hour before the due time
        before.wait(10)
    assert rows(config)["rescout-6-months"]["state"] == "planned"
    clock_file.write_text(iso(DUE + timedelta(minutes=5)))
    crashing = start(config, imap_account, clock_file, crash_at)
    assert crashing.wait(60) == -9, f"the daemon should have killed itself at {crash_at}"
    expected = "planned" if crash_at == "followups:queued" else "sent"
    assert rows(config)["rescout-6-months"]["state"] == expected
    for _restart in range(2):
        running = start(config, imap_account, clock_file)
        try:
            smtp_sink.wait_for(1, timeout=30)
            time.sleep(3.0)  # several ticks and delivery rounds: nothing more goes out
        finally:
            stop(running)
        assert len(smtp_sink.messages) == 1
    assert smtp_sink.messages[0].rcpt_tos == ("hanako@example.net",)
    assert rows(config)["rescout-6-months"]["state"] == "sent"


BROKEN = """
[[followup]]
name = "typo"
after = { event = "rejected", delay = "6 months" }
send = "rescot.txt.j2"
subject = "x"
purpose = "rescout"
oncee = true
"""


def test_a_broken_reload_keeps_the_old_rules(
        tmp_path: Path, imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    config = write_config(tmp_path, imap_account)
    rules = tmp_path / "rules"
    shutil.copytree(SHIPPED_RULES, rules)
    config.write_text(config.read_text().replace(str(SHIPPED_RULES), str(rules)))
    good = (rules / "followups.toml").read_text(encoding="utf-8")

    def reload() -> subprocess.CompletedProcess[str]:
        return subprocess.run([*MAILFLOW, "rules", "reload", "-c", str(config)],
                              env=env_for(imap_account), capture_output=True, text=True,
                              timeout=60)

    with DaemonThread(config) as running:
        in_force = running.daemon.followups.rules
        (rules / "followups.toml").write_text(good + BROKEN, encoding="utf-8")
        done = reload()
        assert done.returncode == 2, done.stderr
        errors = done.stderr.strip().splitlines()
        assert len(errors) == 3 and all("followups.toml:" in line for line in errors), errors
        assert "did you mean '6mo'" in done.stderr and "'rescout.txt.j2'" in done.stderr
        assert "did you mean 'once'" in done.stderr
        assert running.daemon.followups.rules is in_force
        # the daemon itself refuses too (a file broken after the command checked it)
        with pytest.raises(Exception, match="unknown key"):
            running.daemon.reload()
        assert running.daemon.followups.rules is in_force
        renamed = good.replace('name = "rescout-1-year"', 'name = "rescout-12-months"')
        (rules / "followups.toml").write_text(renamed, encoding="utf-8")
        done = reload()
        assert done.returncode == 0, done.stderr
        names = [rule.name for rule in running.daemon.followups.rules.rules]
    assert "rescout-12-months" in names and "rescout-1-year" not in names


def test_unsubscribe_link_over_http(tmp_path: Path, imap_account: ImapAccount,
                                    smtp_sink: SmtpSink,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    port = free_port()
    web = f'[web]\nlisten = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}"\n'
    config = write_config(tmp_path, imap_account, smtp_sink, extra=SETTINGS + web)
    candidate_id = rejected_candidate(config)
    with DaemonThread(config) as running:
        store = running.daemon.store
        wait_until(lambda: store.find("followups", "candidate_id", candidate_id),
                   what="the follow-ups planned")
        desk = running.daemon.followups.unsubscribes
        with running.daemon.lane, store.transaction():
            token = desk.issue(candidate_id, "rescout", "mail-1")
        link = desk.link(token)
        wait_until(lambda: _answers(link), what="the web edge")
        before = (store.get("candidates", candidate_id),
                  store.find("followups", "candidate_id", candidate_id))
        for _scanner in range(3):  # scanners and people fetch the link: nothing changes
            page = httpx.get(link, headers={"User-Agent": "Mozilla/5.0"})
            assert page.status_code == 200 and "配信停止の確認" in page.text
            assert httpx.head(link).status_code == 200
        assert (store.get("candidates", candidate_id),
                store.find("followups", "candidate_id", candidate_id)) == before
        assert httpx.get(link[:-3] + "xyz").status_code == 404
        done = httpx.post(link, content=b"List-Unsubscribe=One-Click",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert done.status_code == 200 and "配信を停止しました" in done.text
        candidate = store.get("candidates", candidate_id)
        assert candidate is not None
        assert candidate["consents"]["rescout"]["state"] == "withdrawn"
        assert "one-click" in candidate["consents"]["rescout"]["how"]
        planned = [r for r in store.find("followups", "candidate_id", candidate_id)
                   if r["state"] == "planned"]
        assert planned == []
        again = httpx.post(link, data={"confirm": "yes"})
        assert again.status_code == 200


def _answers(link: str) -> bool:
    try:
        return httpx.get(link).status_code in (200, 404)
    except httpx.HTTPError:
        return False
