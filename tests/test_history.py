"""Issue 5: selection stages from Sent, `#mailflow` lines, attachments, and backfill."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
from harness import (
    MAILFLOW,
    PASSWORD_ENV,
    DaemonThread,
    env_for,
    handled_in_store,
    wait_until,
    write_config,
)
from servers import Dovecot, ImapAccount, SmtpSink

from mailflow.demo import samples
from mailflow.errors import NoStore
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import load_config
from mailflow.store import open_store


def application(n: int, to: str) -> bytes:
    return (f"From: =?UTF-8?B?5bGx55Sw?= {n} <applicant{n}@example.net>\r\nTo: {to}\r\n"
            f"Subject: =?UTF-8?B?5b+c5Yuf?= {n}\r\nMessage-ID: <app{n}@example.net>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
            f"採用ご担当者様\r\n応募いたします。電話: 090-0000-{n % 10000:04d}\r\n").encode()


@pytest.fixture
def env(imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    return env_for(imap_account)


def test_interview_invitation_in_sent_moves_the_stage(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount, env: dict[str, str]) -> None:
    user, address = imap_account.username, imap_account.address
    config = write_config(tmp_path, imap_account)
    with DaemonThread(config) as running:
        dovecot.append(user, "INBOX", samples.direct_application_jis().replace(
            samples.RECRUITING.encode(), address.encode()))
        store = running.daemon.store
        wait_until(lambda: store.find("candidates", "emails", "taro.yamada@example.net"),
                   what="the candidate")
        invitation = (f"From: {address}\r\nTo: taro.yamada@example.net\r\n"
                      # 一次面接のご案内
                      "Subject: =?UTF-8?B?5LiA5qyh6Z2i5o6l44Gu44GU5qGI5YaF?=\r\n"
                      "Message-ID: <inv-1@example.co.jp>\r\nContent-Type: text/plain; "
                      "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                      "山田様\r\n一次面接の日程をご案内します。\r\n").encode()
        dovecot.append(user, "Sent", invitation)
        note = (f"From: {address}\r\nTo: {address}\r\nSubject: memo\r\n"
                "Message-ID: <memo-1@example.co.jp>\r\nIn-Reply-To: <inv-1@example.co.jp>\r\n"
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
                "\r\n#mailflow stage=二次面接 interviewer=佐藤 rating=B\r\n").encode()
        dovecot.append(user, "Sent", note.replace(f"To: {address}".encode(),
                                                  b"To: taro.yamada@example.net"))

        def stages() -> list[dict]:
            found = store.find("candidates", "emails", "taro.yamada@example.net")
            return found[0]["stages"] if found and len(found[0]["stages"]) == 2 else []

        first, second = wait_until(stages, what="two stages")
    assert (first["stage"], first["source"]) == ("一次面接", "sent:一次面接のご案内")
    assert (second["stage"], second["interviewer"], second["rating"]) == ("二次面接", "佐藤", "B")


def test_resume_is_kept_owner_only_under_its_hash(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount, env: dict[str, str]) -> None:
    config = write_config(tmp_path, imap_account)
    with DaemonThread(config) as running:
        dovecot.append(imap_account.username, "INBOX", samples.direct_application_jis().replace(
            samples.RECRUITING.encode(), imap_account.address.encode()))
        store = running.daemon.store
        found = wait_until(lambda: store.find("candidates", "emails", "taro.yamada@example.net"),
                           what="the candidate")
    document = found[0]["documents"][0]
    assert document["filename"] == "履歴書.pdf" and document["stored"]
    path = tmp_path / "data" / "attachments" / document["sha256"][:2] / document["sha256"]
    assert path.read_bytes() == b"%PDF-1.4\n% demo resume\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data" / "attachments").stat().st_mode) == 0o700


def _backfill(config: Path, env: dict[str, str]) -> tuple[int, int]:
    """Run `mailflow backfill INBOX` alone; returns (exit status, peak RSS in KiB)."""
    process = subprocess.Popen([*MAILFLOW, "backfill", "INBOX", "-c", str(config)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(process.pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss


def _fill(dovecot: Dovecot, account: ImapAccount, count: int) -> None:
    for start in range(0, count, 500):
        dovecot.append_many(account.username, "INBOX", [
            application(n, account.address) for n in range(start, min(count, start + 500))])


def test_backfill_10k_kill9_resume_once_and_flat_memory(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount, env: dict[str, str]) -> None:
    _fill(dovecot, imap_account, 10_000)
    (tmp_path / "a").mkdir()
    config = write_config(tmp_path / "a", imap_account)
    process = subprocess.Popen([*MAILFLOW, "backfill", "INBOX", "-c", str(config)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def handled() -> int:
        try:
            return sum(handled_in_store(config).values())
        except NoStore:  # the backfill has not created its store yet
            return 0

    wait_until(lambda: handled() > 2000, timeout=120, what="a fifth of the backfill")
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert _backfill(config, env)[0] == 0
    counts = handled_in_store(config)
    assert len(counts) == 10_000 and set(counts.values()) == {1}
    store = open_store(load_config(config).data_dir, read_only=True)
    try:
        assert store.count("candidates") == 10_000
    finally:
        store.close()

    # peak memory does not grow with the folder: 10k vs 1k messages, fresh stores
    (tmp_path / "b").mkdir()
    status, peak_10k = _backfill(write_config(tmp_path / "b", imap_account), env)
    assert status == 0
    dovecot.change_uidvalidity(imap_account.username, "INBOX", keep_messages=False)
    _fill(dovecot, imap_account, 1_000)
    (tmp_path / "c").mkdir()
    status, peak_1k = _backfill(write_config(tmp_path / "c", imap_account), env)
    assert status == 0
    assert peak_10k < peak_1k * 1.25, (peak_1k, peak_10k)


def test_reapplication_is_told_to_hr_by_mail(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount, smtp_sink: SmtpSink,
        env: dict[str, str]) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink)
    user, address = imap_account.username, imap_account.address
    with DaemonThread(config) as running:
        dovecot.append(user, "INBOX", application(1, address))
        store = running.daemon.store
        found = wait_until(lambda: store.find("candidates", "emails", "applicant1@example.net"),
                           what="the candidate")
        with running.daemon.lane:
            TalentPool(store, running.daemon.clock).record_rejection(
                found[0], "スキル不足", "一次面接", True, None)
        again = application(1, address).replace(b"<app1@example.net>", b"<app1b@example.net>")
        dovecot.append(user, "INBOX", again)
        notice = smtp_sink.wait_for(1, timeout=20)[0]
    message = email.message_from_bytes(notice.data, policy=email.policy.default)
    assert notice.rcpt_tos == (address,)
    assert "再応募" in message["Subject"] and message["Auto-Submitted"] == "auto-generated"
    assert found[0]["id"] in message.get_content()


def test_a_mail_cc_to_the_inbox_and_in_sent_is_handled_in_both_and_a_rejection_is_no_stage(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount, env: dict[str, str]) -> None:
    user, address = imap_account.username, imap_account.address
    config = write_config(tmp_path, imap_account)
    with DaemonThread(config) as running:
        dovecot.append(user, "INBOX", application(7, address))
        store = running.daemon.store
        wait_until(lambda: store.find("candidates", "emails", "applicant7@example.net"),
                   what="the candidate")
        invitation = (f"From: {address}\r\nTo: applicant7@example.net\r\nCc: {address}\r\n"
                      "Subject: =?UTF-8?B?5LiA5qyh6Z2i5o6l44Gu44GU5qGI5YaF?=\r\n"
                      "Message-ID: <cc-1@example.co.jp>\r\nContent-Type: text/plain; "
                      "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                      "一次面接の日程をご案内します。\r\n").encode()
        dovecot.append(user, "INBOX", invitation)  # the Cc copy arrives first
        time.sleep(1.0)
        dovecot.append(user, "Sent", invitation)
        rejected = (f"From: {address}\r\nTo: applicant7@example.net\r\n"
                    "Subject: =?UTF-8?B?5pu46aGe6YG46ICD57WQ5p6c44Gu44GU6YCj57Wh?=\r\n"
                    "Message-ID: <no-1@example.co.jp>\r\nContent-Type: text/plain; "
                    "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                    "誠に残念ながら、書類選考を通過されませんでした。\r\n")
        dovecot.append(user, "Sent", rejected.encode())

        def stages() -> list[str]:
            found = store.find("candidates", "emails", "applicant7@example.net")[0]
            return [s["stage"] for s in found["stages"]] if found["status"] == "rejected" else []

        assert wait_until(stages, what="the stage and the rejection") == ["一次面接"]
