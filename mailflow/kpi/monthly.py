"""The monthly KPI report mailed to HR (`[kpi] monthly_report_to`), pure: which month is due, and
the mail's words. On the 1st of each month from 09:00 (rules.timezone) the month before is due,
once; the daemon (daemon/monthly.py) sends it through the outbox."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

SEND_AT = time(9, 0)  # local time on the 1st

LINES = (
    ("applications", "応募数"), ("reapplications", "うち再応募"), ("rejections", "不採用"),
    ("invitations", "Career Relay のご案内"), ("human_clicks", "リンクを開いた方"),
    ("registrations", "Career Relay への登録"), ("hires", "採用"),
    ("slots_earned", "獲得した無料紹介枠"), ("slots_redeemed", "使った無料紹介枠"),
    ("slots_available", "使える無料紹介枠(月末時点)"), ("cost_avoided_yen", "削減した採用費(円)"),
    ("reapplication_rate", "再応募率"), ("referral_hire_rate", "紹介採用率"),
)


def due_month(now: datetime, zone: ZoneInfo, last_sent: str | None) -> tuple[date, date] | None:
    """(first day, last day) of the month to report, or None: not yet 09:00 on the 1st of this
    month, or that month was sent already (`last_sent` "YYYY-MM")."""
    local = now.astimezone(zone)
    first_of_this = local.date().replace(day=1)
    if local < datetime.combine(first_of_this, SEND_AT, zone):
        first_of_this = (first_of_this - timedelta(days=1)).replace(day=1)
    last_day = first_of_this - timedelta(days=1)
    start = last_day.replace(day=1)
    if last_sent is not None and last_sent >= f"{start:%Y-%m}":
        return None
    return start, last_day


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1%}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def mail_text(report: dict[str, Any], company: str, month: date) -> tuple[str, str]:
    """Subject and body (Japanese) of the report for `month`."""
    subject = f"採用 KPI 月次レポート {month:%Y年%m月}"
    lines = [f"{company} 採用ご担当者様", "",
             f"mailflow の {month:%Y年%m月} の数字です({report['zone']})。", ""]
    lines += [f"  {label}: {_shown(report.get(key))}" for key, label in LINES]
    if report.get("by_source"):
        lines += ["", "応募経路別(応募 / 採用 / 6か月定着率)"]
        lines += [f"  {source}: {_shown(row.get('applications'))} / {_shown(row.get('hires'))}"
                  f" / {_shown(row.get('retention_6m'))}"
                  for source, row in report["by_source"].items()]
    lines += ["", "詳しくは管理画面、または mailflow report をご覧ください。"]
    return subject, "\n".join(lines) + "\n"
