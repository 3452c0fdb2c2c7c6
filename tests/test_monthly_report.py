"""Issue 19: the monthly KPI report mailed to HR (`[kpi] monthly_report_to`): the month before,
on the 1st from 09:00 Tokyo time, once however often the daemon restarts."""

from __future__ import annotations

import email
import email.policy
import time
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from harness import PASSWORD_ENV, DaemonThread, write_config
from servers import ImapAccount, SmtpSink

from mailflow.clock import CLOCK_FILE_ENV
from mailflow.kpi.monthly import due_month, mail_text

TOKYO = ZoneInfo("Asia/Tokyo")


def test_the_month_before_is_due_from_nine_on_the_first_in_tokyo() -> None:
    at_0830 = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # 1 Dec 08:30 in Tokyo
    at_0930 = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)  # 1 Dec 09:30 in Tokyo
    assert due_month(at_0830, TOKYO, "2026-10") is None  # November not yet due
    assert due_month(at_0830, TOKYO, None) == (date(2026, 10, 1), date(2026, 10, 31))
    assert due_month(at_0930, TOKYO, "2026-10") == (date(2026, 11, 1), date(2026, 11, 30))
    assert due_month(at_0930, TOKYO, "2026-11") is None  # sent already
    assert due_month(datetime(2027, 1, 1, 0, 0, tzinfo=UTC), TOKYO, "2026-11") == (
        date(2026, 12, 1), date(2026, 12, 31))  # 1 Jan 09:00: December, across the year
    # in UTC the same moment is still 30 November: October is the month before
    assert due_month(at_0930, ZoneInfo("UTC"), None) == (date(2026, 10, 1), date(2026, 10, 31))


def test_the_mail_says_the_figures() -> None:
    report = {"zone": "Asia/Tokyo", "applications": 12, "reapplications": 2, "hires": 1,
              "reapplication_rate": 0.25, "cost_avoided_yen": 1_000_000,
              "by_source": {"doda": {"applications": 7, "hires": 1, "retention_6m": None}}}
    subject, body = mail_text(report, "株式会社テスト", date(2026, 11, 1))
    assert subject == "採用 KPI 月次レポート 2026年11月"
    assert "応募数: 12" in body and "再応募率: 25.0%" in body
    assert "削減した採用費(円): 1,000,000" in body and "doda: 7 / 1 / -" in body


def test_the_daemon_mails_each_month_once_across_restarts(
        tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    clock = tmp_path / "clock"
    clock.write_text("2026-12-01T00:30:00Z", encoding="utf-8")  # 1 Dec 09:30 in Tokyo
    monkeypatch.setenv(CLOCK_FILE_ENV, str(clock))
    to = "hr@example.co.jp"
    config = write_config(tmp_path, imap_account, smtp_sink,
                          extra=f'[kpi]\nmonthly_report_to = "{to}"\n')
    with DaemonThread(config):
        (first,) = smtp_sink.wait_for(1, timeout=30)
    with DaemonThread(config):  # a restart the same day: nothing more
        time.sleep(3)
    assert len(smtp_sink.messages) == 1
    clock.write_text("2027-01-01T00:00:00Z", encoding="utf-8")  # 1 Jan 09:00
    with DaemonThread(config):
        second = smtp_sink.wait_for(2, timeout=30)[1]
    subjects = [email.message_from_bytes(m.data, policy=email.policy.default)["Subject"]
                for m in (first, second)]
    assert subjects == ["採用 KPI 月次レポート 2026年11月", "採用 KPI 月次レポート 2026年12月"]
    assert first.rcpt_tos == (to,)
